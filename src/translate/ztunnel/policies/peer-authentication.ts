/**
 * PeerAuthentication → `istio.security.Authorization` for ztunnel, as istiod's ambient index does
 * it (pilot/pkg/serviceregistry/ambient/authorization.go and policies.go). ztunnel always speaks
 * mTLS over HBONE, so PeerAuthentication only decides whether plaintext peers are refused:
 *
 * - As soon as any PeerAuthentication exists, one static policy
 *   `<root namespace>/istio_converted_static_strict` is sent: DENY when the peer has no identity
 *   (`notPrincipals: [presence]`), scope WORKLOAD_SELECTOR. A workload lists it when its effective
 *   mode is STRICT (mesh < namespace < workload policy, the oldest winning within a level, UNSET
 *   inheriting).
 * - A workload-selector policy (outside the root namespace) with `portLevelMtls` becomes
 *   `<namespace>/converted_peer_authentication_<name>`: DENY rules for plaintext on the ports
 *   that are STRICT, or for plaintext on every port except the PERMISSIVE/DISABLE ones, merged with
 *   the static STRICT rule when a DENY policy pair could not express the exception.
 * - DISABLE acts like PERMISSIVE (ztunnel cannot turn mTLS off).
 */
import { hasLabels, oldestFirst, selectorMatches } from '../../../push/selectors.js';
import type { MtlsMode, PeerAuthentication } from '../../../resources/types.js';
import type { AuthorizationMessage, ClauseMessage, RuleMessage, ZtunnelPolicyContext, ZtunnelPolicyModule } from './types.js';

/** Name of the static STRICT policy (with `_`, which Kubernetes names cannot contain). */
export const STATIC_STRICT_POLICY = 'istio_converted_static_strict';
/** Prefix of policies converted from a PeerAuthentication with port-level mTLS. */
export const CONVERTED_PEER_AUTHENTICATION_PREFIX = 'converted_peer_authentication_';

type Mtls = { mode?: MtlsMode } | undefined;

const isUnset = (m: Mtls): boolean => m?.mode === undefined || m.mode === 'UNSET';
const isStrict = (m: Mtls): boolean => m?.mode === 'STRICT';
const isPermissive = (m: Mtls): boolean => m?.mode === 'PERMISSIVE';
const isDisable = (m: Mtls): boolean => m?.mode === 'DISABLE';

/** "The peer has no identity": plaintext. */
const NO_PRINCIPAL: ClauseMessage = { matches: [{ notPrincipals: [{ presence: {} }] }] };

function oldest(list: readonly PeerAuthentication[]): PeerAuthentication | undefined {
  return [...list].sort(oldestFirst)[0];
}

function namespaceWide(ctx: ZtunnelPolicyContext, namespace: string): PeerAuthentication | undefined {
  return oldest((ctx.snapshot.peerAuthenticationsByNamespace.get(namespace) ?? []).filter((p) => p.metadata.namespace === namespace && !hasLabels(p.spec.selector?.matchLabels)));
}

function portEntries(p: PeerAuthentication): [number, Mtls][] {
  return Object.entries(p.spec.portLevelMtls ?? {})
    .map(([port, m]): [number, Mtls] => [Number(port), m])
    .filter(([port]) => Number.isInteger(port) && port > 0 && port <= 65535)
    .sort(([a], [b]) => a - b);
}

/** The policy ztunnel gets for one workload-selector PeerAuthentication with port-level mTLS, if any. */
export function convertPeerAuthentication(p: PeerAuthentication, rootNamespace: string, nsPolicy: PeerAuthentication | undefined, rootPolicy: PeerAuthentication | undefined): AuthorizationMessage | undefined {
  const mtls = p.spec.mtls;
  if (p.metadata.namespace === rootNamespace || !hasLabels(p.spec.selector?.matchLabels) || portEntries(p).length === 0) return undefined;
  const nsMtls = nsPolicy?.spec.mtls;
  const rootMtls = rootPolicy?.spec.mtls;
  const clauses: ClauseMessage[] = [];
  const rules: RuleMessage[] = [];
  if (isStrict(mtls)) clauses.push(NO_PRINCIPAL);
  let foundNonStrictPort = false;
  for (const [port, portMtls] of portEntries(p)) {
    if (isStrict(portMtls)) {
      const parentStrict =
        isStrict(mtls) || (isUnset(mtls) && nsPolicy !== undefined && isStrict(nsMtls)) || ((nsPolicy === undefined || isUnset(nsMtls)) && rootPolicy !== undefined && isStrict(rootMtls));
      if (parentStrict) continue; // the static STRICT policy covers it
      rules.push({ clauses: [{ matches: [{ notPrincipals: [{ presence: {} }], destinationPorts: [port] }] }] });
    } else if (isPermissive(portMtls) || isDisable(portMtls)) {
      if (isPermissive(mtls) || isDisable(mtls)) continue;
      if (
        isUnset(mtls) &&
        ((nsPolicy !== undefined && !isStrict(nsMtls)) || (nsPolicy === undefined && rootPolicy !== undefined && !isStrict(rootMtls)) || (nsPolicy === undefined && rootPolicy === undefined))
      ) {
        continue; // not STRICT anyway
      }
      foundNonStrictPort = true;
      clauses.push({ matches: [{ notDestinationPorts: [port] }] });
    }
  }
  if (isStrict(mtls) && !foundNonStrictPort) return undefined;
  if (clauses.length === 0 && rules.length === 0) return undefined;
  const mergeStrict = (rootPolicy !== undefined && isStrict(rootMtls) && (nsPolicy === undefined || isUnset(nsMtls) || isStrict(nsMtls))) || (nsPolicy !== undefined && isStrict(nsMtls));
  if (mergeStrict && foundNonStrictPort && !clauses.includes(NO_PRINCIPAL)) clauses.push(NO_PRINCIPAL);
  if (clauses.length > 0) rules.push({ clauses });
  return { name: `${CONVERTED_PEER_AUTHENTICATION_PREFIX}${p.metadata.name}`, namespace: p.metadata.namespace, scope: 'WORKLOAD_SELECTOR', action: 'DENY', rules };
}

/**
 * The PeerAuthentication-derived policy keys for a workload: the static STRICT policy when its
 * effective mode is STRICT, and its converted port-level policy (istiod's
 * `convertedSelectorPeerAuthentications`).
 */
export function peerAuthenticationKeys(rootNamespace: string, applicable: readonly PeerAuthentication[]): string[] {
  let mesh: PeerAuthentication | undefined;
  let namespace: PeerAuthentication | undefined;
  let workload: PeerAuthentication | undefined;
  const older = (a: PeerAuthentication, b: PeerAuthentication | undefined) => b === undefined || oldestFirst(a, b) < 0;
  for (const p of applicable) {
    if (!hasLabels(p.spec.selector?.matchLabels)) {
      if (p.metadata.namespace === rootNamespace) {
        if (older(p, mesh)) mesh = p;
      } else if (older(p, namespace)) namespace = p;
    } else if (p.metadata.namespace !== rootNamespace && older(p, workload)) workload = p;
  }
  let strict = mesh !== undefined && isStrict(mesh.spec.mtls);
  if (namespace && !isUnset(namespace.spec.mtls)) strict = isStrict(namespace.spec.mtls);
  let portPolicy = '';
  if (workload) {
    const mtls = workload.spec.mtls;
    const portKey = `${workload.metadata.namespace}/${CONVERTED_PEER_AUTHENTICATION_PREFIX}${workload.metadata.name}`;
    if (isStrict(mtls)) strict = true;
    if (isPermissive(mtls) || isDisable(mtls)) strict = false;
    const ports = portEntries(workload).map(([, m]) => m);
    if (ports.length > 0) {
      if (isStrict(mtls)) {
        if (ports.some((m) => isPermissive(m) || isDisable(m))) {
          portPolicy = portKey;
          strict = false; // the converted policy carries the STRICT part
        }
      } else if (isPermissive(mtls) || isDisable(mtls)) {
        if (ports.some(isStrict)) portPolicy = portKey;
      } else if (strict) {
        if (ports.some(isPermissive)) {
          portPolicy = portKey;
          strict = false;
        }
      } else {
        strict = false;
        if (ports.some(isStrict)) portPolicy = portKey;
      }
    }
  }
  const keys = new Set<string>();
  if (strict) keys.add(`${rootNamespace}/${STATIC_STRICT_POLICY}`);
  if (portPolicy) keys.add(portPolicy);
  return [...keys].sort();
}

/** The PeerAuthentication module (order 20). */
export const peerAuthenticationModule: ZtunnelPolicyModule = {
  name: 'PeerAuthentication',
  order: 20,
  authorizations(ctx) {
    const all = ctx.snapshot.peerAuthentications;
    if (all.length === 0) return [];
    const out: AuthorizationMessage[] = [
      { name: STATIC_STRICT_POLICY, namespace: ctx.rootNamespace, scope: 'WORKLOAD_SELECTOR', action: 'DENY', rules: [{ clauses: [NO_PRINCIPAL] }] },
    ];
    const rootPolicy = namespaceWide(ctx, ctx.rootNamespace);
    for (const p of all) {
      const converted = convertPeerAuthentication(p, ctx.rootNamespace, namespaceWide(ctx, p.metadata.namespace), rootPolicy);
      if (converted) out.push(converted);
    }
    for (const p of all) {
      if (!hasLabels(p.spec.selector?.matchLabels) && Object.keys(p.spec.portLevelMtls ?? {}).length > 0) {
        ctx.warn(`PeerAuthentication/${p.metadata.namespace}/${p.metadata.name} has portLevelMtls but no selector: ignored for ztunnel (Istio allows port-level mTLS only with a workload selector)`);
      }
    }
    return out;
  },
  workloadPolicies(ctx, workload) {
    const own = (ctx.snapshot.peerAuthenticationsByNamespace.get(workload.namespace) ?? []).filter(
      (p) => p.metadata.namespace === workload.namespace && (!hasLabels(p.spec.selector?.matchLabels) || selectorMatches(p.spec.selector?.matchLabels, workload.labels)),
    );
    const root =
      workload.namespace === ctx.rootNamespace
        ? []
        : (ctx.snapshot.peerAuthenticationsByNamespace.get(ctx.rootNamespace) ?? []).filter((p) => p.metadata.namespace === ctx.rootNamespace && !hasLabels(p.spec.selector?.matchLabels));
    return peerAuthenticationKeys(ctx.rootNamespace, [...own, ...root]);
  },
};
