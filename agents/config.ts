/**
 * The node agent's configuration (DESIGN.md §8): where the control plane is, who this workload is,
 * where state and sockets live, and how Envoy is run.
 *
 * Sources, lowest precedence first: a YAML file (`/etc/skiff/agent.yaml` if it exists, or the file
 * named explicitly), environment variables `SKIFF_<FIELD_IN_UPPER_SNAKE_CASE>` (for example
 * `SKIFF_CONTROL_PLANE`, `SKIFF_ENVOY_ADMIN_PORT`, `SKIFF_LABELS=app=web,version=v1`), then
 * command-line flags passed as `overrides` (camelCase keys). Every value is checked with zod; an
 * error names the field and where its value came from.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { controlPlaneSpiffeId as identityControlPlaneSpiffeId, spiffeId } from '../src/identity/spiffe.js';
import { findEnvoy } from './envoy-path.js';
import { probeConfigSchema } from './probe.js';
import { DEFAULT_ZTUNNEL_PATH, ztunnelBinaryProblem } from './ztunnel/binary.js';

/** The file read when no file is named and it exists. */
export const DEFAULT_AGENT_CONFIG_FILE = '/etc/skiff/agent.yaml';

/** Thrown for any invalid or missing setting; the message names the field and its source. */
export class AgentConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AgentConfigError';
  }
}

// DNS-1123 label (Kubernetes namespace names) and subdomain (service account / workload names).
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
// SPIFFE ID spec §2.1: a trust domain is lowercase letters, digits, dots, dashes and underscores.
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

/** Splits `host:port` or `[v6]:port`; returns undefined when malformed. */
export function splitHostPort(address: string): { host: string; port: number } | undefined {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(address) ?? /^([^:[\]\s]+):(\d{1,5})$/.exec(address);
  if (!m?.[1] || !m[2]) return undefined;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1], port };
}

const str = (what: string) => z.string({ error: (iss) => (iss.input === undefined ? 'required' : `expected ${what}`) }).min(1, `expected ${what}`);

function intFromString(v: unknown): unknown {
  return typeof v === 'string' && /^\s*-?\d+\s*$/.test(v) ? Number(v) : v;
}

function boolFromString(v: unknown): unknown {
  if (typeof v !== 'string') return v;
  const s = v.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(s)) return true;
  if (['false', '0', 'no', 'off'].includes(s)) return false;
  return v;
}

/** `app=web,version=v1` (env and flags) or a YAML mapping. */
function labelsFromString(v: unknown): unknown {
  if (typeof v !== 'string') return v;
  const out: Record<string, string> = {};
  for (const part of v.split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) return v; // left as a string so the schema reports it
    out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}

const port = (dflt: number) =>
  z.preprocess(intFromString, z.number({ error: 'expected an integer port 1-65535' }).int('expected an integer port 1-65535').min(1, 'expected an integer port 1-65535').max(65535, 'expected an integer port 1-65535')).default(dflt);

/** The zod schema of the agent configuration (input: file/env/flag values; output: {@link AgentConfig}). */
export const agentConfigSchema = z.strictObject({
  /** Control plane gRPC TLS address for xDS and the CA (`host:port`, DESIGN.md §5 port 15012). */
  controlPlane: str('host:port').refine((s) => splitHostPort(s) !== undefined, 'expected host:port (IPv6 as [addr]:port) with a port 1-65535'),
  /** PEM trust bundle used to verify the control plane's serving certificate. */
  rootCertPath: str('a file path'),
  /** Bootstrap token (JWT) file; only needed while no valid SVID is persisted in stateDir. */
  tokenPath: str('a file path').optional(),
  namespace: str('a namespace').regex(DNS_LABEL, 'expected a DNS-1123 label (lowercase letters, digits, "-", at most 63)'),
  serviceAccount: str('a service account name').regex(DNS_SUBDOMAIN, 'expected a DNS-1123 subdomain (lowercase letters, digits, "-", ".")'),
  /** The WorkloadEntry this VM is; not set with `workloadGroup` (the control plane names the entry). */
  workloadName: str('a workload name').regex(DNS_SUBDOMAIN, 'expected a DNS-1123 subdomain (lowercase letters, digits, "-", ".")').optional(),
  /**
   * `<namespace>/<name>` (or `<name>` in `namespace`) of a WorkloadGroup to register this VM
   * into: the control plane creates its WorkloadEntry and sends the group's probe.
   */
  workloadGroup: str('<namespace>/<name>').regex(/^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\/)?[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, 'expected <namespace>/<name> of a WorkloadGroup').optional(),
  /**
   * A probe of the app (Istio's ReadinessProbe shape) whose verdict the agent reports for its
   * WorkloadEntry; with `workloadGroup`, used only when the group has no probe.
   */
  probe: probeConfigSchema.optional(),
  /** The workload's own address, used in the Envoy node id and as INSTANCE_IPS. */
  workloadIp: str('an IP address').refine((s) => net.isIP(s) !== 0, 'expected an IPv4 or IPv6 address'),
  trustDomain: str('a trust domain').regex(TRUST_DOMAIN, 'expected a SPIFFE trust domain (lowercase letters, digits, ".", "-", "_")').default('cluster.local'),
  clusterId: str('a cluster id').default('skiff'),
  labels: z
    .preprocess(labelsFromString, z.record(z.string().regex(LABEL_KEY, 'invalid label key'), z.string({ error: 'expected a string label value' }), { error: 'expected a mapping or k=v,k=v' }))
    .default({}),
  /** Where the SVID (key + chain, mode 0600) and the Envoy bootstrap are kept across restarts. */
  stateDir: str('a directory path').default('/var/lib/skiff-agent'),
  /** Directory of the SDS Unix socket (`sds.sock`); keep it short: socket paths must stay < 108 bytes. */
  socketDir: str('a directory path')
    .default('/run/skiff-agent')
    .refine((s) => Buffer.byteLength(path.join(s, 'sds.sock')) < 108, 'socket path <socketDir>/sds.sock must be shorter than 108 bytes'),
  envoyPath: str('a file path').optional(),
  envoyAdminPort: port(15000),
  /** Pass `--use-dynamic-base-id` so several Envoys can run on one host. */
  envoyBaseIdDynamic: z.preprocess(boolFromString, z.boolean({ error: 'expected true or false' })).default(true),
  /** Envoy's `--drain-time-s`; on stop the agent drains listeners this long before SIGTERM. */
  envoyDrainSeconds: z.preprocess(intFromString, z.number({ error: 'expected an integer number of seconds' }).int().min(0).max(600)).default(5),
  envoyLogLevel: z.enum(['trace', 'debug', 'info', 'warning', 'warn', 'error', 'critical', 'off'], { error: 'expected an Envoy log level (trace, debug, info, warning, error, critical, off)' }).default('warn'),
  /** Port of the readiness endpoint `GET /healthz/ready` (agents/readiness.ts, DESIGN.md §5); 0 turns it off. */
  readinessPort: z.preprocess(intFromString, z.number({ error: 'expected an integer port 0-65535 (0 turns it off)' }).int('expected an integer port 0-65535 (0 turns it off)').min(0, 'expected an integer port 0-65535 (0 turns it off)').max(65535, 'expected an integer port 0-65535 (0 turns it off)')).default(15021),
  /** Address the readiness endpoint binds (default: workloadIp; 127.0.0.1 keeps it local, 0.0.0.0 opens every interface). */
  readinessAddress: str('an IP address').refine((s) => net.isIP(s) !== 0, 'expected an IPv4 or IPv6 address').optional(),
  /** Requested SVID lifetime in seconds; the CA may cap it (DESIGN.md §4: default 24 h, max 90 d). */
  certTtlSeconds: z.preprocess(intFromString, z.number({ error: 'expected an integer number of seconds' }).int('expected an integer number of seconds').min(1, 'expected at least 1 second').max(90 * 24 * 3600, 'expected at most 90 days (7776000 s)')).optional(),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], { error: 'expected a log level (trace, debug, info, warn, error, fatal, silent)' }).default('info'),
  /** xDS flavour Envoy uses for ADS: `sotw` (state of the world, `GRPC`) or `delta` (incremental, `DELTA_GRPC`). */
  xdsMode: z.enum(['sotw', 'delta'], { error: 'expected "sotw" or "delta"' }).default('sotw'),
  /** The VM's proxy: an Envoy sidecar (default) or ztunnel in dedicated mode (DESIGN.md §7, agents/ztunnel). */
  proxy: z.enum(['envoy', 'ztunnel'], { error: 'expected "envoy" or "ztunnel"' }).default('envoy'),
  /** ztunnel binary for `proxy: ztunnel` (checked at start: it must exist and be executable). */
  ztunnelPath: str('a file path').default(DEFAULT_ZTUNNEL_PATH),
  /** Lifetime of the session tokens the agent writes for ztunnel, seconds (the control plane caps it at 1 h). */
  sessionTokenTtlSeconds: z.preprocess(intFromString, z.number({ error: 'expected an integer number of seconds' }).int('expected an integer number of seconds').min(10, 'expected at least 10 seconds').max(3600, 'expected at most 3600 seconds (1 h)')).default(1800),
  /**
   * Proxyless gRPC mode (issue 8 §2, agents/proxyless): no Envoy; the agent serves a local xDS
   * endpoint on `<socketDir>/xds.sock`, writes the grpc-js-xds bootstrap and the SVID files under
   * `<stateDir>/proxyless`, and rotates them.
   */
  proxyless: z.preprocess(boolFromString, z.boolean({ error: 'expected true or false' })).default(false),
});

/** The validated agent configuration. */
export type AgentConfig = z.output<typeof agentConfigSchema> & { envoyPath: string };

/** `workloadName` and `workloadGroup` go together only one way: exactly one of them names the workload. */
function workloadProblems(config: z.output<typeof agentConfigSchema>): { field: string; message: string }[] {
  if (config.workloadGroup !== undefined) {
    const slash = config.workloadGroup.indexOf('/');
    const ns = slash < 0 ? config.namespace : config.workloadGroup.slice(0, slash);
    const problems: { field: string; message: string }[] = [];
    if (ns !== config.namespace) problems.push({ field: 'workloadGroup', message: `the WorkloadGroup must be in the agent's namespace ${config.namespace}, got ${ns}` });
    if (config.workloadName !== undefined) problems.push({ field: 'workloadName', message: 'not allowed with workloadGroup: the control plane names the auto-registered WorkloadEntry' });
    return problems;
  }
  return config.workloadName === undefined ? [{ field: 'workloadName', message: 'required, or register into a WorkloadGroup with workloadGroup' }] : [];
}

/** `<namespace>/<name>` of the configured WorkloadGroup (a bare name is in the agent's namespace). */
export function workloadGroupRef(config: Pick<AgentConfig, 'namespace' | 'workloadGroup'>): string | undefined {
  if (config.workloadGroup === undefined) return undefined;
  return config.workloadGroup.includes('/') ? config.workloadGroup : `${config.namespace}/${config.workloadGroup}`;
}

/** Raw input accepted from a file, env or flags, before validation. */
export type AgentConfigInput = Partial<Record<keyof z.input<typeof agentConfigSchema>, unknown>>;

const FIELDS = Object.keys(agentConfigSchema.shape) as (keyof AgentConfigInput)[];

/** `envoyAdminPort` → `SKIFF_ENVOY_ADMIN_PORT`. */
export function envVarFor(field: string): string {
  return `SKIFF_${field.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()}`;
}

/** `envoyAdminPort` → `--envoy-admin-port`. */
export function flagFor(field: string): string {
  return `--${field.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase()}`;
}

/** Options for {@link loadAgentConfig}. */
export interface LoadAgentConfigOptions {
  /** YAML file; an explicitly named file must exist. Default: {@link DEFAULT_AGENT_CONFIG_FILE} if present. */
  file?: string;
  /** Flag values (camelCase keys); `undefined` values are ignored. */
  overrides?: AgentConfigInput;
  /** Environment to read `SKIFF_*` from (default `process.env`). */
  env?: NodeJS.ProcessEnv;
  /**
   * The CLI's flag for a field when it is not {@link flagFor}'s kebab-case name (for example
   * `{rootCertPath: '--root-cert'}`), so errors name the flag the user typed.
   */
  flagNames?: Partial<Record<keyof AgentConfigInput, string>>;
}

/**
 * Loads and validates the agent configuration: YAML file < `SKIFF_*` environment < `overrides`.
 * Throws {@link AgentConfigError} naming the field and its source (file path, variable or flag)
 * for a missing, unknown or invalid setting, or an unreadable/unparsable file.
 */
export function loadAgentConfig(opts: LoadAgentConfigOptions = {}): AgentConfig {
  const env = opts.env ?? process.env;
  const flag = (field: string): string => opts.flagNames?.[field as keyof AgentConfigInput] ?? flagFor(field);
  const merged: Record<string, unknown> = {};
  const origin: Record<string, string> = {};

  const file = opts.file ?? (fs.existsSync(DEFAULT_AGENT_CONFIG_FILE) ? DEFAULT_AGENT_CONFIG_FILE : undefined);
  if (file) {
    for (const [key, value] of Object.entries(readConfigFile(file))) {
      merged[key] = value;
      origin[key] = file;
    }
  }
  for (const field of FIELDS) {
    const v = env[envVarFor(field)];
    if (v !== undefined && v !== '') {
      merged[field] = v;
      origin[field] = `env ${envVarFor(field)}`;
    }
  }
  for (const [key, value] of Object.entries(opts.overrides ?? {})) {
    if (value === undefined) continue;
    merged[key] = value;
    origin[key] = `flag ${flag(key)}`;
  }

  const result = agentConfigSchema.safeParse(merged);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      if (issue.code === 'unrecognized_keys') {
        return issue.keys.map((k) => `${k}: unknown setting (from ${origin[k] ?? 'input'})`).join('; ');
      }
      const field = issue.path.map(String).join('.') || '(root)';
      const top = String(issue.path[0] ?? '');
      const from = origin[top] ? ` (from ${origin[top]})` : ` (set it in the config file, ${envVarFor(top)} or ${flag(top)})`;
      return `${field}: ${issue.message}${from}`;
    });
    if (merged['workloadName'] === undefined && merged['workloadGroup'] === undefined) {
      lines.push(`workloadName: required, or register into a WorkloadGroup with workloadGroup (set it in the config file, ${envVarFor('workloadName')} or ${flag('workloadName')})`);
    }
    throw new AgentConfigError(`invalid agent config: ${lines.join('; ')}`);
  }
  const problems = workloadProblems(result.data);
  if (result.data.proxy === 'ztunnel') {
    const problem = ztunnelBinaryProblem(result.data.ztunnelPath);
    if (problem) problems.push({ field: 'ztunnelPath', message: `the ztunnel binary ${problem}` });
  }
  if (problems.length > 0) {
    const lines = problems.map((p) => `${p.field}: ${p.message}${origin[p.field] ? ` (from ${origin[p.field]})` : ` (set it in the config file, ${envVarFor(p.field)} or ${flag(p.field)})`}`);
    throw new AgentConfigError(`invalid agent config: ${lines.join('; ')}`);
  }
  return { ...result.data, envoyPath: findEnvoy(result.data.envoyPath) };
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new AgentConfigError(`cannot read agent config file ${file}: ${(err as Error).message}`);
  }
  const doc = parseDocument(text);
  const first = doc.errors[0];
  if (first) {
    const line = first.linePos?.[0]?.line;
    throw new AgentConfigError(`${file}${line ? `:${line}` : ''}: invalid YAML: ${first.message.split('\n')[0] ?? ''}`);
  }
  const value: unknown = doc.toJS();
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new AgentConfigError(`${file}: expected a mapping of settings at the top level`);
  return value as Record<string, unknown>;
}

/** The workload's SPIFFE ID, `spiffe://<td>/ns/<namespace>/sa/<serviceAccount>` (DESIGN.md §4). */
export function workloadSpiffeId(config: Pick<AgentConfig, 'trustDomain' | 'namespace' | 'serviceAccount'>): string {
  return spiffeId(config.trustDomain, config.namespace, config.serviceAccount);
}

/** The control plane's SPIFFE ID, `spiffe://<td>/ns/skiff-system/sa/skiff-control-plane` (DESIGN.md §4). */
export const controlPlaneSpiffeId: (trustDomain: string) => string = identityControlPlaneSpiffeId;
