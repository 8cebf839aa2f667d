/**
 * `skiff policy`: the reference evaluator on the command line.
 *
 *   skiff policy check -f mesh/ --to demo/web --from cluster.local/ns/demo/sa/client \
 *     --port 8080 --method POST --path /admin --header x-user=alice --jwt <token>
 *
 * prints `ALLOW` or `DENY` on the first line, then the deciding policy and rule, dry-run and
 * audit results and warnings (`--json` prints the decision as JSON). Exit code 0 for either
 * decision, 1 when the configuration is invalid, 2 for a usage error.
 *
 *   skiff policy lint -f mesh/ [--mesh-config mesh-config.yaml]
 *
 * prints every error and warning of the configuration (the same checks as `skiff validate`) plus
 * Istio's translation warnings (HTTP-only attributes on TCP ports, CUSTOM providers), and exits
 * 1 when there is an error.
 */
import { promises as fs } from 'node:fs';
import { isIP } from 'node:net';
import type { Command } from 'commander';
import { describeDestination, evaluate, lintPolicies } from '../policy/index.js';
import type { Decision, EvaluationDestination, EvaluationInput } from '../policy/types.js';
import { formatIssue, type ResourceLocator } from '../resources/issues.js';
import { parseResources } from '../resources/parse.js';
import { DEFAULT_MESH_CONFIG, loadMeshConfig, type MeshConfig } from '../resources/mesh-config.js';
import {
  resourceKey,
  type AuthorizationPolicy,
  type MeshResource,
  type PeerAuthentication,
  type RequestAuthentication,
  type ResourceIssue,
  type WorkloadEntry,
} from '../resources/types.js';
import { loadDirectory } from '../sources/file/index.js';
import { collect } from './options.js';

/** Where the commands write (tests capture it). */
export interface PolicyCliIo {
  out(text: string): void;
  err(text: string): void;
}

const processIo: PolicyCliIo = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
};

/** A usage error: printed, exit code 2. */
class UsageError extends Error {}

interface CheckFlags {
  filename: string;
  to?: string;
  from?: string;
  sourceIp: string;
  remoteIp?: string;
  port?: string;
  protocol?: string;
  method?: string;
  path?: string;
  host?: string;
  header: string[];
  jwt?: string;
  jwksFile: string[];
  sni?: string;
  meshConfig?: string;
  trustDomain?: string;
  extAuthz?: string;
  json?: boolean;
}

interface LintFlags {
  filename: string;
  meshConfig?: string;
  json?: boolean;
}

function requireIp(value: string | undefined, flag: string): string | undefined {
  if (value !== undefined && isIP(value) === 0) throw new UsageError(`${flag}: expected an IP address, got "${value}"`);
  return value;
}

function parseHeaders(list: readonly string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const h of list) {
    const m = /^([^=:\s]+)\s*[=:]\s?(.*)$/.exec(h);
    if (!m) throw new UsageError(`--header: expected name=value, got "${h}"`);
    const name = (m[1] ?? '').toLowerCase();
    (out[name] ??= []).push(m[2] ?? '');
  }
  return out;
}

/** `--jwks-file [uri=]file`: keys for one jwksUri/issuer, or (without `uri=`) for every rule. */
async function readJwksFiles(list: readonly string[]): Promise<EvaluationInput['jwks']> {
  if (list.length === 0) return undefined;
  const byKey = new Map<string, string>();
  let fallback: string | undefined;
  for (const item of list) {
    const eq = item.lastIndexOf('=');
    const file = eq > 0 ? item.slice(eq + 1) : item;
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (err) {
      throw new UsageError(`--jwks-file: cannot read ${file}: ${(err as Error).message}`);
    }
    if (eq > 0) byKey.set(item.slice(0, eq), text);
    else fallback = text;
  }
  return (key: string) => byKey.get(key) ?? fallback;
}

async function loadConfig(
  filename: string,
  meshConfigFile: string | undefined,
): Promise<{ resources: Awaited<ReturnType<typeof loadDirectory>>['resources']; mesh?: MeshConfig; errors: ResourceIssue[]; warnings: ResourceIssue[] }> {
  const loaded = await loadDirectory(filename);
  const errors = [...loaded.errors];
  const warnings = [...loaded.warnings];
  let mesh: MeshConfig | undefined;
  if (meshConfigFile !== undefined) {
    const mc = await loadMeshConfig(meshConfigFile);
    errors.push(...mc.errors);
    warnings.push(...mc.warnings);
    mesh = mc.config;
  }
  return { resources: loaded.resources, mesh, errors, warnings };
}

function describeDecision(d: Decision, dest: EvaluationDestination, to: string): string {
  const lines: string[] = [];
  lines.push(`${d.allowed ? 'ALLOW' : 'DENY'}${d.httpStatus !== undefined ? ` (${d.httpStatus})` : ''} ${d.status}`);
  lines.push(`  destination: ${to} ${dest.ip}:${dest.port} ${dest.protocol}`);
  if (d.by) lines.push(`  rule: ${d.by.action} policy ${d.by.policy} rules[${d.by.ruleIndex}]`);
  lines.push(`  reason: ${d.reason}`);
  if (d.requestAuth) lines.push(`  request principal: ${d.requestAuth.principal}`);
  for (const r of d.dryRun) lines.push(`  dry-run: ${r.action} policy ${r.policy} ${r.wouldMatch ? `would match (rules[${r.ruleIndex}])` : 'would not match'}`);
  for (const a of d.audit) lines.push(`  audit: policy ${a.policy} rules[${a.ruleIndex}]`);
  for (const w of d.warnings) lines.push(`  warning: ${w}`);
  return `${lines.join('\n')}\n`;
}

async function runCheck(flags: CheckFlags, io: PolicyCliIo): Promise<number> {
  if (flags.to === undefined) throw new UsageError('--to <namespace/workloadEntry> is required');
  const slash = flags.to.indexOf('/');
  if (slash <= 0 || slash === flags.to.length - 1 || flags.to.indexOf('/', slash + 1) >= 0) {
    throw new UsageError(`--to: expected <namespace>/<workloadEntry>, got "${flags.to}"`);
  }
  let port: number | undefined;
  if (flags.port !== undefined) {
    port = Number(flags.port);
    if (!/^[0-9]+$/.test(flags.port) || port < 1 || port > 65535) throw new UsageError(`--port: expected a port 1-65535, got "${flags.port}"`);
  }
  let protocol: 'HTTP' | 'TCP' | undefined;
  if (flags.protocol !== undefined) {
    const p = flags.protocol.toUpperCase();
    if (p !== 'HTTP' && p !== 'TCP') throw new UsageError(`--protocol: expected http or tcp, got "${flags.protocol}"`);
    protocol = p;
  }
  if (flags.extAuthz !== undefined && flags.extAuthz !== 'allow' && flags.extAuthz !== 'deny') {
    throw new UsageError(`--ext-authz: expected allow or deny, got "${flags.extAuthz}"`);
  }
  const sourceIp = requireIp(flags.sourceIp, '--source-ip') ?? '127.0.0.1';
  const remoteIp = requireIp(flags.remoteIp, '--remote-ip');
  const headers = parseHeaders(flags.header);
  const jwks = await readJwksFiles(flags.jwksFile);

  const cfg = await loadConfig(flags.filename, flags.meshConfig);
  if (cfg.errors.length > 0) {
    for (const e of cfg.errors) io.err(`error: ${formatIssue(e)}\n`);
    io.err(`configuration has ${cfg.errors.length} error(s): nothing evaluated\n`);
    return 1;
  }
  const mesh = cfg.mesh ?? DEFAULT_MESH_CONFIG;
  const [ns, name] = [flags.to.slice(0, slash), flags.to.slice(slash + 1)];
  const we = cfg.resources.find((r): r is WorkloadEntry => r.kind === 'WorkloadEntry' && r.metadata.namespace === ns && r.metadata.name === name);
  if (!we) {
    const known = cfg.resources.filter((r) => r.kind === 'WorkloadEntry').map((r) => `${r.metadata.namespace}/${r.metadata.name}`);
    throw new UsageError(`--to: no WorkloadEntry ${flags.to} in ${flags.filename}${known.length ? ` (known: ${known.join(', ')})` : ''}`);
  }
  const choice = describeDestination(cfg.resources, we, { port, protocol, rootNamespace: mesh.rootNamespace });
  if ('error' in choice) throw new UsageError(choice.error);
  const dest = choice.destination;

  const decision = evaluate({
    policies: {
      authorizationPolicies: cfg.resources.filter((r): r is AuthorizationPolicy => r.kind === 'AuthorizationPolicy'),
      requestAuthentications: cfg.resources.filter((r): r is RequestAuthentication => r.kind === 'RequestAuthentication'),
      peerAuthentications: cfg.resources.filter((r): r is PeerAuthentication => r.kind === 'PeerAuthentication'),
    },
    rootNamespace: mesh.rootNamespace,
    trustDomain: flags.trustDomain ?? mesh.trustDomain,
    trustDomainAliases: mesh.trustDomainAliases,
    destination: dest,
    request: {
      peer: flags.from,
      sourceIp,
      remoteIp,
      host: flags.host ?? `${dest.ip.includes(':') ? `[${dest.ip}]` : dest.ip}:${dest.port}`,
      method: flags.method ?? 'GET',
      path: flags.path ?? '/',
      headers,
      sni: flags.sni,
      jwt: flags.jwt !== undefined ? { token: flags.jwt } : undefined,
    },
    jwks,
    extensionProviders: cfg.mesh?.extensionProviders,
    externalAuthorizer: flags.extAuthz === undefined ? undefined : () => flags.extAuthz === 'allow',
  });
  for (const n of choice.notes) decision.warnings.push(n);
  if (decision.status === 'custom-denied' && flags.extAuthz === undefined) {
    decision.warnings.push('pass --ext-authz allow|deny to choose what the external authorizer answers');
  }
  if (flags.json) io.out(`${JSON.stringify({ destination: { workload: flags.to, ...dest }, decision }, null, 2)}\n`);
  else io.out(describeDecision(decision, dest, flags.to));
  return 0;
}

async function runLint(flags: LintFlags, io: PolicyCliIo): Promise<number> {
  const cfg = await loadConfig(flags.filename, flags.meshConfig);
  const mesh = cfg.mesh ?? DEFAULT_MESH_CONFIG;
  const lint =
    cfg.errors.length === 0
      ? lintPolicies(cfg.resources, { rootNamespace: mesh.rootNamespace, extensionProviders: cfg.mesh?.extensionProviders, locate: await fileLocator(cfg.resources) })
      : [];
  const warnings = [...cfg.warnings, ...lint];
  if (flags.json) {
    io.out(`${JSON.stringify({ errors: cfg.errors, warnings }, null, 2)}\n`);
  } else {
    for (const e of cfg.errors) io.out(`error: ${formatIssue(e)}\n`);
    for (const w of warnings) io.out(`warning: ${formatIssue(w)}\n`);
    io.out(`${cfg.resources.length} resources, ${cfg.errors.length} errors, ${warnings.length} warnings\n`);
  }
  return cfg.errors.length > 0 ? 1 : 0;
}

/**
 * A locator for resources loaded by `loadDirectory`: re-parses each resource's file once and finds
 * the field's line in it (by `Kind/namespace/name`).
 */
async function fileLocator(resources: readonly MeshResource[]): Promise<ResourceLocator> {
  const byFile = new Map<string, Promise<{ parsed: Map<string, MeshResource>; locate: ResourceLocator } | undefined>>();
  const files = [...new Set(resources.map((r) => r.origin?.file).filter((f): f is string => f !== undefined))];
  for (const file of files) {
    byFile.set(
      file,
      fs.readFile(file, 'utf8').then(
        (text) => {
          const result = parseResources(text, file);
          return { parsed: new Map(result.resources.map((r) => [resourceKey(r), r])), locate: result.locate };
        },
        () => undefined,
      ),
    );
  }
  const loaded = new Map<string, { parsed: Map<string, MeshResource>; locate: ResourceLocator } | undefined>();
  for (const [file, p] of byFile) loaded.set(file, await p);
  return (resource, path) => {
    const entry = resource.origin?.file !== undefined ? loaded.get(resource.origin.file) : undefined;
    const twin = entry?.parsed.get(resourceKey(resource));
    return entry && twin ? entry.locate(twin, path) : undefined;
  };
}

/** Runs `fn`, mapping a usage error to exit code 2 and any other failure to 1. */
async function run(io: PolicyCliIo, fn: () => Promise<number>): Promise<void> {
  try {
    const code = await fn();
    if (code !== 0) process.exitCode = code;
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`error: ${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw err;
  }
}

/**
 * Adds `policy check` and `policy lint` to `program`. `io` defaults to stdout/stderr. Commander's
 * own usage errors (an unknown option, a missing option value) exit with code 2.
 */
export function registerPolicy(program: Command, io: PolicyCliIo = processIo): void {
  const policy = program
    .command('policy')
    .description('evaluate and lint AuthorizationPolicy / RequestAuthentication / PeerAuthentication with Istio semantics')
    .exitOverride((err) => {
      process.exit(err.exitCode === 0 ? 0 : 2);
    });

  policy
    .command('check')
    .description('decide one request to a workload: prints ALLOW or DENY and the deciding policy rule')
    .requiredOption('-f, --filename <path>', 'mesh configuration: a directory (read recursively) or a file')
    .option('--to <namespace/name>', 'the destination WorkloadEntry')
    .option('--from <spiffe-id>', 'the peer identity (client certificate SPIFFE ID); omit for a plaintext peer')
    .option('--source-ip <ip>', 'the direct peer address (ipBlocks, source.ip)', '127.0.0.1')
    .option('--remote-ip <ip>', 'the original client address (remoteIpBlocks, remote.ip); default: x-forwarded-for, else --source-ip')
    .option('--port <port>', "the destination port (default: the workload's only inbound port)")
    .option('--protocol <http|tcp>', 'override how the port is handled')
    .option('--method <method>', 'HTTP method', 'GET')
    .option('--path <path>', 'HTTP path (a query is ignored for matching)', '/')
    .option('--host <host>', 'Host / :authority (default <address>:<port>)')
    .option('--header <name=value>', 'a request header (repeatable)', collect, [])
    .option('--jwt <token>', 'a bearer token (Authorization: Bearer)')
    .option('--jwks-file <[uri=]file>', 'JWKS for a jwksUri or issuer, or for all (repeatable)', collect, [])
    .option('--sni <name>', 'the TLS SNI (connection.sni)')
    .option('--mesh-config <file>', 'mesh config (rootNamespace, trustDomain, extensionProviders)')
    .option('--trust-domain <td>', 'the mesh trust domain (default from the mesh config, else cluster.local)')
    .option('--ext-authz <allow|deny>', 'what the CUSTOM external authorizer answers')
    .option('--json', 'print the decision as JSON')
    .action(async (flags: CheckFlags) => run(io, () => runCheck(flags, io)));

  policy
    .command('lint')
    .description('print errors and warnings of the security policies, incl. Istio translation warnings; exit 1 on errors')
    .requiredOption('-f, --filename <path>', 'mesh configuration: a directory (read recursively) or a file')
    .option('--mesh-config <file>', 'mesh config, to check CUSTOM providers')
    .option('--json', 'print errors and warnings as JSON')
    .action(async (flags: LintFlags) => run(io, () => runLint(flags, io)));
}
