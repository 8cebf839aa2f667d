/**
 * Self-checks of the security part of a {@link ProxyIR}: the AuthorizationPolicies and JWT rules of
 * the inbound listeners and the external authorizers they use. The resource layer rejects bad
 * policies before they reach the IR; these checks are the last guard before Envoy sees them (a bad
 * CIDR or an unknown `when` key would otherwise be skipped by the translator, widening a DENY).
 */
import { parseCidr, parsePortValue, parseWhenKey } from './authz-attributes.js';
import type { AuthzPolicyIR, ClusterIR, JwtRuleIR, ProxyIR } from './types.js';

const ACTIONS = new Set(['ALLOW', 'DENY', 'AUDIT', 'CUSTOM']);
const CIDR_FIELDS = new Set(['ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks']);
const PORT_FIELDS = new Set(['ports', 'notPorts']);

/**
 * Returns every problem of the security configuration in `ir`, one sentence each (deduplicated:
 * a policy shared by several listeners is reported once).
 */
export function validateSecurity(ir: ProxyIR, clusters: ReadonlyMap<string, ClusterIR>): string[] {
  const errors = new Set<string>();
  const providers = new Map<string, ProxyIR['extAuthzProviders'][number]>();
  for (const p of ir.extAuthzProviders) {
    if (!p.name) errors.add('an extension provider has an empty name');
    if (providers.has(p.name)) errors.add(`duplicate extension provider ${p.name}`);
    providers.set(p.name, p);
    if (p.error !== undefined) continue;
    const c = clusters.get(p.cluster);
    if (!c) errors.add(`extension provider ${p.name} names missing cluster ${p.cluster}`);
    else if (c.direction === 'inbound') errors.add(`extension provider ${p.name} names inbound cluster ${p.cluster}`);
    if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535) errors.add(`extension provider ${p.name}: invalid port ${p.port}`);
    if (!(p.timeoutMs > 0)) errors.add(`extension provider ${p.name}: timeout must be positive, got ${p.timeoutMs} ms`);
    if (p.statusOnError !== undefined && !(Number.isInteger(p.statusOnError) && p.statusOnError >= 100 && p.statusOnError <= 599)) {
      errors.add(`extension provider ${p.name}: statusOnError ${p.statusOnError} is not an HTTP status`);
    }
    if (p.pathPrefix !== undefined && !p.pathPrefix.startsWith('/')) errors.add(`extension provider ${p.name}: pathPrefix ${JSON.stringify(p.pathPrefix)} must begin with /`);
  }

  const seenPolicies = new Set<string>();
  const seenRules = new Set<string>();
  for (const l of ir.inbound) {
    for (const policy of l.authorization) {
      const key = `${policy.namespace}/${policy.name}`;
      if (seenPolicies.has(key)) continue;
      seenPolicies.add(key);
      for (const e of checkPolicy(policy, providers)) errors.add(e);
    }
    for (const rule of l.jwtRules) {
      if (seenRules.has(rule.source)) continue;
      seenRules.add(rule.source);
      for (const e of checkJwtRule(rule)) errors.add(e);
    }
  }
  return [...errors];
}

function checkPolicy(p: AuthzPolicyIR, providers: ReadonlyMap<string, unknown>): string[] {
  const errors: string[] = [];
  const at = `AuthorizationPolicy ${p.namespace}/${p.name}`;
  if (!p.name || !p.namespace) errors.push(`an AuthorizationPolicy has an empty name or namespace (${JSON.stringify(`${p.namespace}/${p.name}`)})`);
  if (!ACTIONS.has(p.action)) errors.push(`${at}: unknown action ${JSON.stringify(p.action)}`);
  if (p.action === 'CUSTOM') {
    if (!p.provider) errors.push(`${at}: CUSTOM needs provider.name`);
    else if (!providers.has(p.provider)) errors.push(`${at}: provider ${p.provider} is not among the proxy's extension providers`);
  } else if (p.provider !== undefined) {
    errors.push(`${at}: provider is only allowed with action CUSTOM`);
  }
  if (p.dryRun && p.action !== 'ALLOW' && p.action !== 'DENY') errors.push(`${at}: dry-run is only supported for ALLOW and DENY`);
  p.rules.forEach((rule, i) => {
    const r = `${at} rules[${i}]`;
    rule.from.forEach((src, j) => {
      for (const [field, values] of Object.entries(src) as Array<[string, string[] | undefined]>) {
        checkValues(values ?? [], `${r}.from[${j}].source.${field}`, CIDR_FIELDS.has(field) ? 'cidr' : 'string', errors);
      }
    });
    rule.to.forEach((op, j) => {
      for (const [field, values] of Object.entries(op) as Array<[string, string[] | undefined]>) {
        checkValues(values ?? [], `${r}.to[${j}].operation.${field}`, PORT_FIELDS.has(field) ? 'port' : 'string', errors);
      }
    });
    rule.when.forEach((c, j) => {
      const w = `${r}.when[${j}]`;
      const attr = parseWhenKey(c.key);
      if ('error' in attr) {
        errors.push(`${w}.key: ${attr.error}`);
        return;
      }
      if (c.values.length === 0 && c.notValues.length === 0) errors.push(`${w}: ${c.key} needs values or notValues`);
      const kind = attr.kind === 'source.ip' || attr.kind === 'remote.ip' || attr.kind === 'destination.ip' ? 'cidr' : attr.kind === 'destination.port' ? 'port' : 'string';
      checkValues(c.values, `${w}.values`, kind, errors);
      checkValues(c.notValues, `${w}.notValues`, kind, errors);
    });
  });
  return errors;
}

function checkValues(values: readonly string[], where: string, kind: 'string' | 'cidr' | 'port', errors: string[]): void {
  values.forEach((v, i) => {
    if (typeof v !== 'string' || v === '') {
      errors.push(`${where}[${i}]: empty value`);
      return;
    }
    if (kind === 'cidr' && !parseCidr(v)) errors.push(`${where}[${i}]: ${JSON.stringify(v)} is not an IP address or CIDR block`);
    if (kind === 'port') {
      const n = parsePortValue(v);
      if (n === undefined || n < 1) errors.push(`${where}[${i}]: ${JSON.stringify(v)} is not a port 1-65535`);
    }
  });
}

function checkJwtRule(rule: JwtRuleIR): string[] {
  const errors: string[] = [];
  if (!rule.issuer) errors.push(`${rule.source}: empty issuer`);
  let doc: unknown;
  try {
    doc = JSON.parse(rule.jwks);
  } catch {
    doc = undefined;
  }
  if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as { keys?: unknown }).keys)) {
    errors.push(`${rule.source}: jwks is not a JSON Web Key Set (an object with a "keys" array)`);
  }
  rule.fromHeaders.forEach((h, i) => {
    if (!h.name) errors.push(`${rule.source}: fromHeaders[${i}] has an empty name`);
  });
  rule.fromParams.forEach((p, i) => {
    if (!p) errors.push(`${rule.source}: fromParams[${i}] is empty`);
  });
  return errors;
}
