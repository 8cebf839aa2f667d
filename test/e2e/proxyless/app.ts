/**
 * The proxyless gRPC application of test/e2e/proxyless.test.ts, run inside a lab VM with the
 * environment the agent writes (`GRPC_XDS_BOOTSTRAP`, `GRPC_XDS_EXPERIMENTAL_RBAC`):
 *
 *   app.ts server --listen <ip:port>[,<ip:port>…] --name <n> [--fail-every-other <ip:port>]
 *     an xDS-enabled server (grpc-js-xds XdsServer with XdsServerCredentials) of echo.proto;
 *     on the port named by --fail-every-other, every second call fails with UNAVAILABLE.
 *   app.ts client --target xds:///<host>:<port> --count <n> [--method Call|Admin] [--deadline-ms <ms>]
 *     a grpc-js-xds client (XdsChannelCredentials); prints one JSON line
 *     {"total","ok","codes":{code:count},"servers":{name:count},"peers":[…],"details":[…]}.
 *   app.ts plain --target <ip:port> --cert <pem> --key <pem> --ca <pem>
 *     a plain grpc-js mTLS client with the given credentials (no xDS); prints the same JSON.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as xds from '@grpc/grpc-js-xds';
import protobuf from 'protobufjs';

const root = protobuf.loadSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'echo.proto'));
const Req = root.lookupType('skiff.test.echo.EchoRequest');
const Rep = root.lookupType('skiff.test.echo.EchoReply');
interface EchoRequest {
  message: string;
}
interface EchoReply {
  server: string;
  peer: string;
  message: string;
}
const method = (name: string): grpc.MethodDefinition<EchoRequest, EchoReply> => ({
  path: `/skiff.test.echo.Echo/${name}`,
  requestStream: false,
  responseStream: false,
  requestSerialize: (m) => Buffer.from(Req.encode(Req.fromObject(m)).finish()),
  requestDeserialize: (b) => Req.toObject(Req.decode(b), { defaults: true }) as EchoRequest,
  responseSerialize: (m) => Buffer.from(Rep.encode(Rep.fromObject(m)).finish()),
  responseDeserialize: (b) => Rep.toObject(Rep.decode(b), { defaults: true }) as EchoReply,
});
const SERVICE = { Call: method('Call'), Admin: method('Admin') };

function flag(name: string, dflt?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : dflt;
  if (v === undefined) throw new Error(`--${name} is required`);
  return v;
}

function peerOf(call: grpc.ServerUnaryCall<EchoRequest, EchoReply>): string {
  const cert = call.getAuthContext().sslPeerCertificate;
  return (cert?.subjectaltname ?? '').split(', ').find((s) => s.startsWith('URI:'))?.slice(4) ?? '';
}

async function serve(): Promise<void> {
  xds.register();
  const name = flag('name');
  const failing = flag('fail-every-other', '');
  const listens = flag('listen').split(',');
  for (const listen of listens) {
    const server = new xds.XdsServer();
    let calls = 0;
    const handler = (call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>): void => {
      calls += 1;
      if (listen === failing && calls % 2 === 0) {
        cb({ code: grpc.status.UNAVAILABLE, details: `${name} fails every other call` });
        return;
      }
      cb(null, { server: name, peer: peerOf(call), message: call.request.message });
    };
    server.addService(SERVICE, { Call: handler, Admin: handler });
    await new Promise<void>((resolve, reject) => server.bindAsync(listen, new xds.XdsServerCredentials(grpc.ServerCredentials.createInsecure()), (err) => (err ? reject(err) : resolve())));
    process.stdout.write(`listening ${listen}\n`);
  }
}

interface Summary {
  total: number;
  ok: number;
  codes: Record<string, number>;
  servers: Record<string, number>;
  peers: string[];
  details: string[];
}

async function run(client: grpc.Client, count: number, methodName: 'Call' | 'Admin', deadlineMs: number): Promise<Summary> {
  const m = SERVICE[methodName];
  const out: Summary = { total: 0, ok: 0, codes: {}, servers: {}, peers: [], details: [] };
  for (let i = 0; i < count; i++) {
    await new Promise<void>((resolve) => {
      client.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, { message: `m${i}` }, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err, reply) => {
        out.total += 1;
        const code = err ? String(err.code) : '0';
        out.codes[code] = (out.codes[code] ?? 0) + 1;
        if (err) {
          if (out.details.length < 5 && !out.details.includes(err.details)) out.details.push(err.details);
        } else if (reply) {
          out.ok += 1;
          out.servers[reply.server] = (out.servers[reply.server] ?? 0) + 1;
          if (!out.peers.includes(reply.peer)) out.peers.push(reply.peer);
        }
        resolve();
      });
    });
  }
  return out;
}

async function main(): Promise<void> {
  const mode = process.argv[2];
  if (mode === 'server') return serve();
  const count = Number(flag('count', '1'));
  const methodName = flag('method', 'Call') as 'Call' | 'Admin';
  const deadlineMs = Number(flag('deadline-ms', '5000'));
  let client: grpc.Client;
  if (mode === 'client') {
    xds.register();
    client = new grpc.Client(flag('target'), new xds.XdsChannelCredentials(grpc.credentials.createInsecure()));
  } else if (mode === 'plain') {
    const creds = grpc.credentials.createSsl(fs.readFileSync(flag('ca')), fs.readFileSync(flag('key')), fs.readFileSync(flag('cert')), { checkServerIdentity: () => undefined });
    client = new grpc.Client(flag('target'), creds);
  } else {
    throw new Error(`unknown mode ${String(mode)}`);
  }
  const summary = await run(client, count, methodName, deadlineMs);
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  client.close();
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
