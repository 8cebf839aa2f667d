/**
 * The CLI's client of the HTTP API (`skiff apply/get/delete/token --server`): `node:http(s)`
 * requests with the admin bearer token, problem+json errors turned into readable messages.
 *
 * Where things come from:
 * - server: `--server`, else `SKIFF_SERVER`, else `http://127.0.0.1:8080`
 * - admin token: `--token-file`, else `SKIFF_ADMIN_TOKEN`, else `./.skiff/admin-token` (the file
 *   `skiff serve` writes on first start in a checkout) when it exists
 * - CA for `https://` servers: `--ca-cert` (e.g. the data dir's `trust-bundle.pem`), else
 *   `SKIFF_CA_CERT`, else the system roots
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import type { Command } from 'commander';
import { defaultDataDir } from './options.js';

/** Default API address. */
export const DEFAULT_SERVER = 'http://127.0.0.1:8080';

/** Connection settings of an {@link ApiClient}. */
export interface ApiClientOptions {
  /** `http(s)://host:port`. */
  server: string;
  /** Admin bearer token. */
  token?: string;
  /** Where the token came from (a flag, the environment or a file), named in a 401 message. */
  tokenSource?: string;
  /** PEM roots to verify an https server with. */
  caPem?: string;
}

/** Client flags as commander parses them. */
export interface ClientFlags {
  server?: string;
  tokenFile?: string;
  caCert?: string;
}

/** One field error of a problem document. */
export interface ProblemFieldError {
  path: string;
  message: string;
  line?: number;
}

/** An RFC 9457 problem document from the API. */
export interface ProblemBody {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  errors?: ProblemFieldError[];
}

/** A non-2xx answer (or a transport failure, `status` 0). */
export class ApiClientError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly problem?: ProblemBody,
  ) {
    super(message);
    this.name = 'ApiClientError';
  }
}

/** A 2xx answer. */
export interface ApiResponse<T> {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: T;
}

/** Adds `--server`, `--token-file` and `--ca-cert` to a command. */
export function addClientOptions(cmd: Command): Command {
  return cmd
    .option('--server <url>', `control plane API (default $SKIFF_SERVER or ${DEFAULT_SERVER})`)
    .option('--token-file <file>', 'file holding the admin token (default $SKIFF_ADMIN_TOKEN, else ./.skiff/admin-token)')
    .option('--ca-cert <file>', 'CA bundle to verify an https server (e.g. <data dir>/trust-bundle.pem)');
}

/** True when the user asked for the API (a `--server` flag or `SKIFF_SERVER`). */
export function wantsApi(flags: ClientFlags): boolean {
  return flags.server !== undefined || (process.env['SKIFF_SERVER'] ?? '') !== '';
}

function readSecret(file: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the admin token file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const token = text.trim();
  if (token === '') throw new Error(`the admin token file ${file} is empty`);
  return token;
}

/** Resolves the connection settings (see the module comment). Throws when no token is found. */
export function resolveClientOptions(flags: ClientFlags): ApiClientOptions {
  const server = (flags.server ?? process.env['SKIFF_SERVER'] ?? DEFAULT_SERVER).replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]+$/.test(server)) throw new Error(`--server: expected http(s)://host:port, got "${server}"`);
  let token: string | undefined;
  let tokenSource: string | undefined;
  if (flags.tokenFile !== undefined) {
    token = readSecret(flags.tokenFile);
    tokenSource = `--token-file ${flags.tokenFile}`;
  } else if ((process.env['SKIFF_ADMIN_TOKEN'] ?? '') !== '') {
    token = (process.env['SKIFF_ADMIN_TOKEN'] ?? '').trim();
    tokenSource = 'SKIFF_ADMIN_TOKEN';
  } else {
    const local = path.join(defaultDataDir(), 'admin-token');
    if (fs.existsSync(local)) {
      token = readSecret(local);
      tokenSource = local;
    }
  }
  if (token === undefined) throw new Error('no admin token: pass --token-file <file> or set SKIFF_ADMIN_TOKEN (skiff admin-token create makes one on the control plane host)');
  const caFile = flags.caCert ?? process.env['SKIFF_CA_CERT'];
  const opts: ApiClientOptions = { server, token, ...(tokenSource ? { tokenSource } : {}) };
  if (caFile) opts.caPem = fs.readFileSync(caFile, 'utf8');
  return opts;
}

/** Renders a problem for a terminal: `<detail>` then one `  path (line N): message` per field. */
export function formatProblem(status: number, problem: ProblemBody | undefined, mapLine?: (line: number) => string | undefined): string {
  if (!problem) return `HTTP ${status}`;
  const lines = [`${problem.title ?? `HTTP ${status}`} (${status}): ${problem.detail ?? ''}`.trimEnd()];
  for (const e of problem.errors ?? []) {
    const where = e.line !== undefined ? (mapLine?.(e.line) ?? `line ${e.line}`) : undefined;
    lines.push(`  ${where ? `${where} ` : ''}${e.path ? `${e.path}: ` : ''}${e.message}`);
  }
  return lines.join('\n');
}

/** A small JSON client of the Skiff API. */
export class ApiClient {
  constructor(private readonly opts: ApiClientOptions) {}

  /** The server URL. */
  get server(): string {
    return this.opts.server;
  }

  /**
   * Sends a request; resolves the parsed JSON body of a 2xx answer, rejects with
   * {@link ApiClientError} otherwise (its message holds the problem's detail).
   */
  async request<T>(method: string, pathAndQuery: string, body?: { text: string; contentType: string }): Promise<ApiResponse<T>> {
    const url = new URL(this.opts.server + pathAndQuery);
    const headers: http.OutgoingHttpHeaders = { accept: 'application/json' };
    if (this.opts.token) headers['authorization'] = `Bearer ${this.opts.token}`;
    if (body) {
      headers['content-type'] = body.contentType;
      headers['content-length'] = Buffer.byteLength(body.text);
    }
    const { status, resHeaders, text } = await new Promise<{ status: number; resHeaders: http.IncomingHttpHeaders; text: string }>((resolve, reject) => {
      const options: https.RequestOptions = { method, headers };
      if (url.protocol === 'https:' && this.opts.caPem) options.ca = this.opts.caPem;
      const req = (url.protocol === 'https:' ? https : http).request(url, options, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, resHeaders: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', (err) => reject(new ApiClientError(0, `cannot reach ${this.opts.server}: ${err.message}`)));
      req.setTimeout(60_000, () => req.destroy(new Error('no answer within 60 s')));
      req.end(body?.text);
    });
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (status < 200 || status >= 300) {
      const problem = typeof parsed === 'object' && parsed !== null ? (parsed as ProblemBody) : undefined;
      const hint = status === 401 && this.opts.tokenSource ? `\n  (the admin token came from ${this.opts.tokenSource})` : '';
      throw new ApiClientError(status, formatProblem(status, problem) + hint, problem);
    }
    return { status, headers: resHeaders, body: parsed as T };
  }
}
