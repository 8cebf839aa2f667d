/**
 * Configuration of the Consul source, from `skiff serve` flags and/or a YAML file
 * (`--consul-config`, a `consul:` section with the same settings in camelCase). A flag that is set
 * wins over the file. The source is on when at least one address is configured.
 *
 * ```yaml
 * consul:
 *   addresses: [https://consul-1.internal:8501, https://consul-2.internal:8501]
 *   tokenFile: /etc/skiff/consul-token       # an ACL token with service:read and node:read
 *   datacenter: dc1
 *   namespace: team-a                        # Consul Enterprise namespace to read (optional)
 *   partition: default                       # Consul Enterprise admin partition (optional)
 *   tags: [mesh]                             # only instances with every one of these tags
 *   filter: 'Service.Meta.env == "prod"'     # a Consul filter expression on /v1/health/service
 *   hostTemplate: '{service}.service.consul' # also {datacenter} and {namespace}
 *   defaultNamespace: default
 *   defaultServiceAccount: default
 *   warningIsHealthy: true
 *   caFile: /etc/skiff/consul-ca.pem
 *   certFile: /etc/skiff/consul-client.pem
 *   keyFile: /etc/skiff/consul-client-key.pem
 *   tlsServerName: consul.internal
 *   wait: 60s                                # blocking-query wait (Consul allows up to 10m)
 * ```
 *
 * Errors are {@link ConsulConfigError}s that name the flag or file key.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { isDns1123Label, isDns1123Subdomain } from '../../resources/names.js';
import { parseDurationMs } from '../../resources/security-schemas.js';
import { DEFAULT_MAPPING, hostTemplateProblem, type ConsulMapping } from './mapping.js';

/** TLS towards Consul (its HTTPS port, 8501 by default). */
export interface ConsulTlsConfig {
  /** PEM CA bundle that signs Consul's server certificate (default: the system roots). */
  caFile?: string;
  /** Client certificate and key, when Consul verifies clients (`verify_incoming`). */
  certFile?: string;
  keyFile?: string;
  /** Name checked in Consul's certificate (default: the address's host). */
  serverName?: string;
}

/** The resolved settings of the Consul source. */
export interface ConsulSourceConfig {
  /** Consul HTTP API base URLs (`http://host:8500`, `https://host:8501`), tried in order. */
  addresses: string[];
  /** The ACL token (read from `tokenFile`); never logged. */
  token?: string;
  datacenter?: string;
  /** Consul Enterprise namespace (sent as `X-Consul-Namespace`). */
  namespace?: string;
  /** Consul Enterprise admin partition (`partition` query parameter). */
  partition?: string;
  /** Consul filter expression applied to each `/v1/health/service/<name>` query. */
  filter?: string;
  mapping: ConsulMapping;
  tls?: ConsulTlsConfig;
  /** Blocking query `wait`, in seconds (1-600). */
  waitSeconds: number;
  /** Back-off after a failed query: first delay and ceiling, in ms (jittered, never below half). */
  retry: { initialMs: number; maxMs: number };
  /** Per-watch rate limit (a token bucket): `burst` quick queries, then one per `intervalMs`. */
  rateLimit: { burst: number; intervalMs: number };
}

/** Defaults of the non-mapping settings. */
export const CONSUL_DEFAULTS = Object.freeze({
  waitSeconds: 60,
  retry: Object.freeze({ initialMs: 250, maxMs: 5000 }),
  rateLimit: Object.freeze({ burst: 2, intervalMs: 1000 }),
});

/** A configuration problem; the message names the flag or file key. */
export class ConsulConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConsulConfigError';
  }
}

/** The settings as written (flags or file), before checking. */
export interface ConsulConfigInput {
  addresses?: string[];
  tokenFile?: string;
  datacenter?: string;
  namespace?: string;
  partition?: string;
  tags?: string[];
  filter?: string;
  hostTemplate?: string;
  defaultNamespace?: string;
  defaultServiceAccount?: string;
  warningIsHealthy?: boolean;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  tlsServerName?: string;
  wait?: string;
}

/** `skiff serve` flags of the Consul source, as commander names them. */
export interface ConsulFlags {
  consulConfig?: string;
  consulAddress?: string[];
  consulTokenFile?: string;
  consulDatacenter?: string;
  consulNamespace?: string;
  consulPartition?: string;
  consulTag?: string[];
  consulFilter?: string;
  consulServiceHostTemplate?: string;
  consulDefaultNamespace?: string;
  consulDefaultServiceAccount?: string;
  consulWarningIsHealthy?: string;
  consulCaFile?: string;
  consulCertFile?: string;
  consulKeyFile?: string;
  consulTlsServerName?: string;
  consulWait?: string;
}

/**
 * Normalises one Consul address: `host:port`, `host` (port 8500), `http://host[:port]` or
 * `https://host[:port]` (port 8501), IPv6 in brackets. Returns the base URL without a path.
 */
export function normalizeConsulAddress(value: string, where = '--consul-address'): string {
  const text = value.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new ConsulConfigError(`${where}: ${JSON.stringify(value)} is not an address (expected host:port, http://host:port or https://host:port)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConsulConfigError(`${where}: ${JSON.stringify(value)}: only http and https are supported`);
  if (url.hostname === '') throw new ConsulConfigError(`${where}: ${JSON.stringify(value)} has no host`);
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash || url.username) {
    throw new ConsulConfigError(`${where}: ${JSON.stringify(value)}: give only scheme, host and port (the API path /v1 is added)`);
  }
  const port = url.port || (url.protocol === 'https:' ? '8501' : '8500');
  return `${url.protocol}//${url.hostname}:${port}`;
}

const fileSchema = z.strictObject({
  consul: z
    .strictObject({
      addresses: z.array(z.string()).optional(),
      tokenFile: z.string().optional(),
      datacenter: z.string().optional(),
      namespace: z.string().optional(),
      partition: z.string().optional(),
      tags: z.array(z.string()).optional(),
      filter: z.string().optional(),
      hostTemplate: z.string().optional(),
      defaultNamespace: z.string().optional(),
      defaultServiceAccount: z.string().optional(),
      warningIsHealthy: z.boolean().optional(),
      caFile: z.string().optional(),
      certFile: z.string().optional(),
      keyFile: z.string().optional(),
      tlsServerName: z.string().optional(),
      wait: z.string().optional(),
    })
    .optional(),
});

/** Reads the `consul:` section of a YAML file; relative paths in it are relative to the file. */
export async function readConsulConfigFile(file: string): Promise<ConsulConfigInput> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new ConsulConfigError(`--consul-config ${file}: cannot read: ${(err as Error).message}`);
  }
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (err) {
    throw new ConsulConfigError(`${file}: invalid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const parsed = fileSchema.safeParse(data ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.map(String).join('.');
    const message = issue.code === 'unrecognized_keys' ? `unknown field "${issue.keys.join('", "')}"` : issue.message;
    throw new ConsulConfigError(`${file}: ${where ? `${where}: ` : ''}${message}`);
  }
  const section = parsed.data.consul ?? {};
  const dir = path.dirname(path.resolve(file));
  const rel = (p: string | undefined): string | undefined => (p === undefined ? undefined : path.resolve(dir, p));
  const out: ConsulConfigInput = { ...section };
  for (const k of ['tokenFile', 'caFile', 'certFile', 'keyFile'] as const) {
    const v = rel(section[k]);
    if (v !== undefined) out[k] = v;
  }
  return out;
}

function parseBool(value: string, flag: string): boolean {
  const v = value.trim().toLowerCase();
  if (v === 'true' || v === '1' || v === 'yes') return true;
  if (v === 'false' || v === '0' || v === 'no') return false;
  throw new ConsulConfigError(`${flag}: expected true or false, got ${JSON.stringify(value)}`);
}

/** The settings given as flags (only those that are set). */
export function consulInputFromFlags(flags: ConsulFlags): ConsulConfigInput {
  const out: ConsulConfigInput = {};
  const abs = (p: string | undefined): string | undefined => (p === undefined ? undefined : path.resolve(p));
  if (flags.consulAddress?.length) out.addresses = flags.consulAddress;
  if (flags.consulTag?.length) out.tags = flags.consulTag;
  const strings: [keyof ConsulConfigInput, string | undefined][] = [
    ['tokenFile', abs(flags.consulTokenFile)],
    ['datacenter', flags.consulDatacenter],
    ['namespace', flags.consulNamespace],
    ['partition', flags.consulPartition],
    ['filter', flags.consulFilter],
    ['hostTemplate', flags.consulServiceHostTemplate],
    ['defaultNamespace', flags.consulDefaultNamespace],
    ['defaultServiceAccount', flags.consulDefaultServiceAccount],
    ['caFile', abs(flags.consulCaFile)],
    ['certFile', abs(flags.consulCertFile)],
    ['keyFile', abs(flags.consulKeyFile)],
    ['tlsServerName', flags.consulTlsServerName],
    ['wait', flags.consulWait],
  ];
  for (const [k, v] of strings) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  if (flags.consulWarningIsHealthy !== undefined) out.warningIsHealthy = parseBool(flags.consulWarningIsHealthy, '--consul-warning-is-healthy');
  return out;
}

/**
 * Checks the merged input and reads the token file. Returns undefined when no address is configured
 * (the source is off). Throws {@link ConsulConfigError} naming the setting.
 */
export async function resolveConsulConfig(input: ConsulConfigInput): Promise<ConsulSourceConfig | undefined> {
  const addresses = (input.addresses ?? []).map((a) => normalizeConsulAddress(a));
  if (addresses.length === 0) {
    const set = Object.keys(input).filter((k) => (input as Record<string, unknown>)[k] !== undefined);
    if (set.length > 0) throw new ConsulConfigError(`Consul settings (${set.join(', ')}) are given but no --consul-address: the Consul source needs at least one address`);
    return undefined;
  }
  const mapping: ConsulMapping = {
    hostTemplate: input.hostTemplate ?? DEFAULT_MAPPING.hostTemplate,
    defaultNamespace: input.defaultNamespace ?? DEFAULT_MAPPING.defaultNamespace,
    defaultServiceAccount: input.defaultServiceAccount ?? DEFAULT_MAPPING.defaultServiceAccount,
    warningIsHealthy: input.warningIsHealthy ?? DEFAULT_MAPPING.warningIsHealthy,
    tags: [...new Set(input.tags ?? [])],
  };
  const templateProblem = hostTemplateProblem(mapping.hostTemplate);
  if (templateProblem !== undefined) throw new ConsulConfigError(`--consul-service-host-template: ${templateProblem}`);
  if (!isDns1123Label(mapping.defaultNamespace)) throw new ConsulConfigError(`--consul-default-namespace: ${JSON.stringify(mapping.defaultNamespace)} is not a lower-case DNS label`);
  if (!isDns1123Subdomain(mapping.defaultServiceAccount)) {
    throw new ConsulConfigError(`--consul-default-service-account: ${JSON.stringify(mapping.defaultServiceAccount)} is not a lower-case DNS-1123 subdomain`);
  }
  if (mapping.tags.some((t) => t.trim() === '')) throw new ConsulConfigError('--consul-tag: a tag cannot be empty');
  let waitSeconds: number = CONSUL_DEFAULTS.waitSeconds;
  if (input.wait !== undefined) {
    const ms = parseDurationMs(input.wait.trim());
    if (ms === undefined || ms < 1000 || ms > 600_000) throw new ConsulConfigError(`--consul-wait: expected a duration from 1s to 10m (e.g. 60s, 5m), got ${JSON.stringify(input.wait)}`);
    waitSeconds = Math.round(ms / 1000);
  }
  const config: ConsulSourceConfig = {
    addresses,
    mapping,
    waitSeconds,
    retry: { ...CONSUL_DEFAULTS.retry },
    rateLimit: { ...CONSUL_DEFAULTS.rateLimit },
  };
  if (input.tokenFile !== undefined) config.token = await readToken(input.tokenFile);
  for (const k of ['datacenter', 'namespace', 'partition', 'filter'] as const) {
    const v = input[k]?.trim();
    if (v) config[k] = v;
  }
  if (input.certFile !== undefined || input.keyFile !== undefined) {
    if (input.certFile === undefined || input.keyFile === undefined) throw new ConsulConfigError('--consul-cert-file and --consul-key-file go together (a client certificate needs its key)');
  }
  const tls: ConsulTlsConfig = {};
  if (input.caFile !== undefined) tls.caFile = input.caFile;
  if (input.certFile !== undefined) tls.certFile = input.certFile;
  if (input.keyFile !== undefined) tls.keyFile = input.keyFile;
  if (input.tlsServerName !== undefined) tls.serverName = input.tlsServerName;
  if (Object.keys(tls).length > 0) {
    for (const [flag, file] of [['--consul-ca-file', tls.caFile], ['--consul-cert-file', tls.certFile], ['--consul-key-file', tls.keyFile]] as const) {
      if (file === undefined) continue;
      try {
        await fs.access(file);
      } catch {
        throw new ConsulConfigError(`${flag}: cannot read ${file}`);
      }
    }
    if (!addresses.some((a) => a.startsWith('https:'))) throw new ConsulConfigError('TLS settings are given but no --consul-address uses https://');
    config.tls = tls;
  }
  return config;
}

/** Reads an ACL token file (trimmed); the token itself never appears in an error. */
async function readToken(file: string): Promise<string> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new ConsulConfigError(`--consul-token-file: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const token = text.trim();
  if (token === '' || /\s/.test(token)) throw new ConsulConfigError(`--consul-token-file: ${file} must hold exactly one token`);
  return token;
}

/** Flags (and the file they name) → the source config, or undefined when the source is off. */
export async function consulConfigFromFlags(flags: ConsulFlags): Promise<ConsulSourceConfig | undefined> {
  const fromFile = flags.consulConfig ? await readConsulConfigFile(path.resolve(flags.consulConfig)) : {};
  return resolveConsulConfig({ ...fromFile, ...consulInputFromFlags(flags) });
}
