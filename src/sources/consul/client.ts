/**
 * The Consul HTTP client of the source, on the `consul` npm package (2.0.1):
 * `catalog.service.list` (`GET /v1/catalog/services`) and `health.service`
 * (`GET /v1/health/service/<name>`) with `index`/`wait` blocking parameters, the ACL token
 * (`X-Consul-Token`), `dc`, `partition` and `filter`, and the response's `X-Consul-Index` (the
 * package returns the HTTP response with its body when asked through `ctx.includeResponse`).
 *
 * What the package cannot do, and what this module does instead:
 * - Namespaces: its typings accept `ns` but it never sends it; the documented
 *   `X-Consul-Namespace` header is set on every request instead.
 * - Several addresses: one package client per address; a failed request moves the next request to
 *   the next address (round robin).
 * - Aborting: its `ctx` event emitter cancels a request in flight (`ctx.emit('cancel')`), wired
 *   to an `AbortSignal`.
 * - TLS: an `https.Agent` with the CA, client certificate and server name.
 *
 * Every error is a {@link ConsulRequestError} naming the request, the address and the cause
 * (HTTP status and Consul's message, invalid JSON, a network error), never the token.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import Consul from 'consul';
import type { ConsulSourceConfig } from './config.js';

/** One answer of a blocking query. */
export interface ConsulAnswer {
  /** `X-Consul-Index` of the answer. */
  index: bigint;
  /** The decoded JSON body (checked by the caller). */
  body: unknown;
}

/** A failed Consul request. */
export class ConsulRequestError extends Error {
  constructor(
    message: string,
    /** HTTP status when Consul answered, else undefined. */
    readonly status?: number,
  ) {
    super(message);
    this.name = 'ConsulRequestError';
  }
}

/** The Consul API as the source uses it. */
export interface ConsulClient {
  /** `GET /v1/catalog/services`; blocks when `index > 0`. */
  services(index: bigint, signal: AbortSignal): Promise<ConsulAnswer>;
  /** `GET /v1/health/service/<service>` (healthy or not); blocks when `index > 0`. */
  health(service: string, index: bigint, signal: AbortSignal): Promise<ConsulAnswer>;
  /** The address the next request goes to. */
  address(): string;
  /** Closes kept-alive connections. */
  close(): void;
}

/** The subset of the package's per-request options the source sends (its typings omit some). */
interface RequestOptions {
  service?: string;
  index?: string;
  wait?: string;
  filter?: string;
  timeout?: number;
  ctx?: EventEmitter;
}

interface Endpoint {
  url: string;
  consul: Consul;
  agent: http.Agent;
}

/** Reads an optional PEM file for the TLS agent. */
function pem(file: string | undefined): string | undefined {
  return file === undefined ? undefined : fs.readFileSync(file, 'utf8');
}

/** `consul: health.service: <message>` → `<message>` (the package prefixes its messages). */
function plainMessage(err: Error): string {
  return err.message.replace(/^consul: [a-z.]+: /, '');
}

/** Creates a client for `config.addresses` (see the module comment). */
export function createConsulClient(config: ConsulSourceConfig): ConsulClient {
  const endpoints: Endpoint[] = config.addresses.map((url) => {
    const u = new URL(url);
    const secure = u.protocol === 'https:';
    const agent = secure
      ? new https.Agent({
          keepAlive: true,
          ca: pem(config.tls?.caFile),
          cert: pem(config.tls?.certFile),
          key: pem(config.tls?.keyFile),
          ...(config.tls?.serverName ? { servername: config.tls.serverName } : {}),
        })
      : new http.Agent({ keepAlive: true });
    const defaults: Record<string, string> = {};
    if (config.token) defaults['token'] = config.token;
    if (config.datacenter) defaults['dc'] = config.datacenter;
    if (config.partition) defaults['partition'] = config.partition;
    const options = {
      host: u.hostname.replace(/^\[|\]$/g, ''),
      port: Number(u.port),
      secure,
      agent,
      defaults,
      // Passed through to the HTTP client for every request (the documented namespace header).
      headers: config.namespace ? { 'X-Consul-Namespace': config.namespace } : {},
    };
    return { url, consul: new Consul(options), agent };
  });
  let current = 0;
  const waitMs = config.waitSeconds * 1000;
  // Consul may add up to wait/16; allow that and some transfer time before calling it a timeout.
  const timeoutMs = waitMs + Math.ceil(waitMs / 16) + 5000;

  async function call(what: string, index: bigint, signal: AbortSignal, run: (c: Consul, opts: RequestOptions) => Promise<unknown>): Promise<ConsulAnswer> {
    const endpoint = endpoints[current % endpoints.length]!;
    const ctx = Object.assign(new EventEmitter(), { includeResponse: true });
    const opts: RequestOptions = { ctx, timeout: index > 0n ? timeoutMs : 10_000 };
    if (index > 0n) {
      opts.index = index.toString();
      opts.wait = `${config.waitSeconds}s`;
    }
    const abort = (): void => void ctx.emit('cancel');
    if (signal.aborted) throw new ConsulRequestError(`${what}: aborted`);
    signal.addEventListener('abort', abort, { once: true });
    try {
      const result = await run(endpoint.consul, opts);
      const [res, body] = result as [http.IncomingMessage, unknown];
      const header = res.headers['x-consul-index'];
      const raw = Array.isArray(header) ? header[0] : header;
      if (raw === undefined || !/^[0-9]{1,20}$/.test(raw)) {
        throw new ConsulRequestError(`${what} on ${endpoint.url}: the answer has no valid X-Consul-Index header (${raw === undefined ? 'missing' : JSON.stringify(raw)})`);
      }
      return { index: BigInt(raw), body };
    } catch (err) {
      if (signal.aborted) throw new ConsulRequestError(`${what}: aborted`);
      current++;
      if (err instanceof ConsulRequestError) throw err;
      const e = err as Error & { code?: string; isCodec?: boolean; isResponse?: boolean; response?: { statusCode?: number; body?: unknown } };
      if (e.isCodec === true) {
        throw new ConsulRequestError(`${what} on ${endpoint.url}: the answer is not valid JSON (${plainMessage(e).replace(/^decode \([^)]*\) failed: /, '')})`);
      }
      const status = e.response?.statusCode;
      if (e.isResponse === true && status !== undefined) {
        const raw = e.response?.body;
        const text = typeof raw === 'string' ? raw : Buffer.isBuffer(raw) ? raw.toString('utf8') : raw !== undefined ? JSON.stringify(raw) : plainMessage(e);
        throw new ConsulRequestError(`${what} on ${endpoint.url}: HTTP ${status}: ${text.trim().slice(0, 300) || 'no message'}`, status);
      }
      throw new ConsulRequestError(`${what} on ${endpoint.url}: ${e.code ?? plainMessage(e)}`);
    } finally {
      signal.removeEventListener('abort', abort);
    }
  }

  return {
    services: (index, signal) => call('GET /v1/catalog/services', index, signal, (c, opts) => c.catalog.service.list(opts as never)),
    health: (service, index, signal) =>
      call(`GET /v1/health/service/${encodeURIComponent(service)}`, index, signal, (c, opts) =>
        c.health.service({ ...opts, service, ...(config.filter ? { filter: config.filter } : {}) } as never),
      ),
    address: () => endpoints[current % endpoints.length]!.url,
    close() {
      for (const e of endpoints) {
        e.consul.destroy();
        e.agent.destroy();
      }
    },
  };
}
