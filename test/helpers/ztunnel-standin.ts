/**
 * A stand-in for the ztunnel binary, for end-to-end tests of `skiff agent --proxy ztunnel` on
 * machines without a ztunnel build. It does what ztunnel's documented start-up does with the
 * environment the agent gives it (istio/ztunnel `src/config.rs`, `src/identity/auth.rs`,
 * `src/xds/client.rs`), and nothing the test could not see a real ztunnel do:
 *
 * - refuses to start (exit 1, as ztunnel's config validation) unless `PROXY_MODE=dedicated`,
 *   `PROXY_WORKLOAD_INFO=<ns>/<name>/<sa>`, `XDS_ADDRESS`/`CA_ADDRESS` (`https://host:port`) and
 *   `XDS_ROOT_CA`/`CA_ROOT_CA` (PEM files) are set; `AUTH_TOKEN` is a file path only when that
 *   file exists at start (otherwise the value is the token);
 * - re-reads the token file for every xDS stream and every certificate request, sending
 *   `authorization: Bearer <file content>` and `clusterid: $CLUSTER_ID`;
 * - requests its workload certificate (CreateCertificate, ECDSA P-256 CSR with the workload's
 *   SPIFFE ID) with that bearer token and no client certificate;
 * - opens the delta ADS stream like ztunnel (test/helpers/ztunnel-client.ts: node
 *   `ztunnel~$INSTANCE_IP~$POD_NAME.$POD_NAMESPACE~...`, wildcard Address and Authorization, ACK),
 *   and reports its own workload's tunnel protocol once ready;
 * - reconnects every `STANDIN_RECONNECT_MS` (default 2000), as ztunnel does after a stream ends,
 *   so a test sees each refreshed token being used;
 * - exits 0 on SIGTERM, and when its parent (the agent) is gone.
 *
 * Log lines use ztunnel's format (`<RFC 3339 time>  INFO standin: ...`) on stdout.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import * as x509 from '@peculiar/x509';
import { createCertificate } from '../../agents/ca-client.js';
import { ZtunnelXdsClient } from './ztunnel-client.js';

const log = (level: 'INFO' | 'WARN' | 'ERROR', msg: string): void => {
  process.stdout.write(`${new Date().toISOString()}  ${level} standin: ${msg}\n`);
};

function fail(msg: string): never {
  log('ERROR', msg);
  process.exit(1);
}

const env = process.env;
if (env['PROXY_MODE'] !== 'dedicated') fail(`PROXY_MODE must be dedicated, got ${env['PROXY_MODE'] ?? '(unset)'}`);
const info = (env['PROXY_WORKLOAD_INFO'] ?? '').split('/');
if (info.length !== 3 || info.some((p) => p === '')) fail(`PROXY_WORKLOAD_INFO must match the format 'namespace/name/service-account' (got ${env['PROXY_WORKLOAD_INFO'] ?? ''})`);
const [namespace, name, serviceAccount] = info as [string, string, string];
const address = (v: string | undefined, what: string): string => {
  const m = /^https:\/\/(.+)$/.exec(v ?? '');
  if (!m?.[1]) fail(`${what} must be https://host:port, got ${v ?? '(unset)'}`);
  return m[1];
};
const xdsAddress = address(env['XDS_ADDRESS'], 'XDS_ADDRESS');
const caAddress = address(env['CA_ADDRESS'], 'CA_ADDRESS');
const rootFile = (v: string | undefined, what: string): string => {
  if (!v || !fs.existsSync(v)) fail(`${what} must name a PEM file, got ${v ?? '(unset)'}`);
  return fs.readFileSync(v, 'utf8');
};
const xdsRoot = rootFile(env['XDS_ROOT_CA'], 'XDS_ROOT_CA');
const caRoot = rootFile(env['CA_ROOT_CA'], 'CA_ROOT_CA');
const authToken = env['AUTH_TOKEN'];
const tokenIsFile = authToken !== undefined && fs.existsSync(authToken);
const clusterId = env['CLUSTER_ID'] ?? 'Kubernetes';
const ip = env['INSTANCE_IP'] ?? '1.1.1.1';
const reconnectMs = Number(env['STANDIN_RECONNECT_MS'] ?? 2000);
const trustDomain = env['STANDIN_TRUST_DOMAIN'] ?? 'cluster.local';
log('INFO', `starting: mode=dedicated workload=${namespace}/${name}/${serviceAccount} xds=${xdsAddress} ca=${caAddress} cluster=${clusterId} token=${tokenIsFile ? 'file' : authToken === undefined ? 'none' : 'static'}`);

/** ztunnel's `load_token`: the whole file, refused when empty. */
function loadToken(): string | undefined {
  if (!tokenIsFile) return authToken;
  const t = fs.readFileSync(authToken, 'utf8');
  if (t.length === 0) throw new Error('token file exists, but was empty');
  return t;
}

/** `exp` of a JWT, for the log (the token itself is never printed). */
function expOf(token: string | undefined): string {
  try {
    const payload = JSON.parse(Buffer.from(token?.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp?: number };
    return String(payload.exp ?? '?');
  } catch {
    return '?';
  }
}

async function fetchCertificate(token: string | undefined): Promise<string> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await crypto.webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const id = `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ keys, signingAlgorithm: alg, extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: id }], true)] });
  // Verified like rustls does for ztunnel: the CA_ADDRESS host against the certificate's SANs.
  const host = caAddress.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
  const creds = grpc.credentials.createSsl(Buffer.from(caRoot), null, null, { checkServerIdentity: (_name, cert) => tls.checkServerIdentity(host, cert) });
  const chain = await createCertificate({ address: caAddress, credentials: creds, csrPem: csr.toString('pem'), ...(token ? { token } : {}), timeoutMs: 5000 });
  const leaf = new crypto.X509Certificate(chain[0] ?? '');
  return leaf.subjectAltName ?? '';
}

let stopping = false;
let current: ZtunnelXdsClient | undefined;
process.on('SIGTERM', () => {
  stopping = true;
  log('INFO', 'received SIGTERM, draining');
  current?.disconnect();
  process.exit(0);
});

// Never outlive the agent (a test that failed may have killed it with SIGKILL).
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.exit(0);
}, 500).unref();

let stream = 0;
async function once(): Promise<void> {
  stream += 1;
  const token = loadToken();
  try {
    const san = await fetchCertificate(loadToken());
    log('INFO', `stream=${stream} certificate issued ${san} token_exp=${expOf(token)}`);
  } catch (err) {
    log('WARN', `stream=${stream} certificate request failed: ${(err as Error).message}`);
  }
  const client = new ZtunnelXdsClient({ address: xdsAddress, rootCaPem: xdsRoot, token, clusterId, pod: { name, namespace, ip } });
  current = client;
  client.connect();
  const ended = client.ended().then((s) => `ended ${grpc.status[s.code] ?? s.code}: ${s.details}`);
  const outcome = await Promise.race([client.whenReady().then(() => 'ready'), ended, new Promise<string>((r) => setTimeout(() => r('timeout'), 10_000))]);
  if (outcome === 'ready') {
    const own = [...(client.state.get('type.googleapis.com/istio.workload.Address')?.values() ?? [])]
      .map((r) => r.value['workload'] as Record<string, unknown> | undefined)
      .find((w) => w?.['name'] === name && w['namespace'] === namespace);
    log('INFO', `stream=${stream} xds ready token_exp=${expOf(token)} own_workload=${own ? String(own['uid']) : 'missing'} tunnel=${own ? JSON.stringify(own['tunnelProtocol'] ?? 'NONE').replace(/"/g, '') : '-'}`);
  } else {
    log('WARN', `stream=${stream} xds stream failed (${outcome}) token_exp=${expOf(token)}`);
  }
  await new Promise((r) => setTimeout(r, reconnectMs));
  client.disconnect();
}

for (;;) {
  if (stopping) break;
  try {
    await once();
  } catch (err) {
    log('WARN', `stream=${stream} ${(err as Error).message}`);
    await new Promise((r) => setTimeout(r, reconnectMs));
  }
}
