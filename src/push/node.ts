/**
 * Parses the identity a proxy claims in its xDS node: Istio's node id
 * `sidecar~<ip>~<name>.<namespace>~<namespace>.svc.cluster.local` and the node metadata keys
 * NAMESPACE, SERVICE_ACCOUNT, LABELS and WORKLOAD_NAME (DESIGN.md §6; Istio's
 * `pkg/model/proxy` conventions). The xDS server compares the result with the client certificate.
 */
import { isIP } from 'node:net';
import type { ProxyIdentity } from '../ir/types.js';

/** The node fields this parser reads (a structural subset of the xDS server's `XdsNode`). */
export interface ProxyNodeInput {
  id: string;
  /** `node.metadata` as plain JSON. */
  metadata?: Record<string, unknown>;
  /** `node.locality` (envoy.config.core.v3.Locality): where the proxy runs. */
  locality?: { region?: string; zone?: string; subZone?: string };
}

/** Thrown by {@link parseProxyNode} for a node id or metadata that cannot name a proxy. */
export class ProxyNodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProxyNodeError';
  }
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * Returns the {@link ProxyIdentity} of `node` in `trustDomain`.
 *
 * - The id must have four `~`-separated parts: type `sidecar`, an IPv4/IPv6 address, `<name>.<ns>`
 *   (the pod-name part; only its namespace suffix is used) and the DNS domain `<ns>.svc.<suffix>`.
 * - The namespace is metadata NAMESPACE, else the domain's first label; when both the id and the
 *   metadata name a namespace they must agree.
 * - SERVICE_ACCOUNT defaults to `default`; LABELS is an object of strings or a JSON string of one;
 *   WORKLOAD_NAME is optional.
 * - `node.locality`, when set, becomes the proxy's locality (its WorkloadEntry's `locality` wins
 *   in the push context).
 *
 * Throws {@link ProxyNodeError} naming the offending part.
 */
export function parseProxyNode(node: ProxyNodeInput, trustDomain: string): ProxyIdentity {
  const parts = node.id.split('~');
  if (parts.length !== 4) {
    throw new ProxyNodeError(`node id ${JSON.stringify(node.id)}: expected sidecar~<ip>~<name>.<namespace>~<namespace>.svc.cluster.local`);
  }
  const [type, ip, podPart, domain] = parts as [string, string, string, string];
  if (type !== 'sidecar') throw new ProxyNodeError(`node id ${JSON.stringify(node.id)}: proxy type ${JSON.stringify(type)} is not supported (expected sidecar)`);
  if (isIP(ip) === 0) throw new ProxyNodeError(`node id ${JSON.stringify(node.id)}: ${JSON.stringify(ip)} is not an IP address`);

  const md = node.metadata ?? {};
  const mdNamespace = optionalString(md, 'NAMESPACE');
  const domainNamespace = domain.split('.')[0] ?? '';
  const dot = podPart.lastIndexOf('.');
  const podNamespace = dot > 0 ? podPart.slice(dot + 1) : '';
  const idNamespace = domainNamespace || podNamespace;
  const namespace = mdNamespace ?? idNamespace;
  if (!namespace) throw new ProxyNodeError(`node id ${JSON.stringify(node.id)}: no namespace in the id and no NAMESPACE metadata`);
  for (const claimed of [domainNamespace, podNamespace]) {
    if (claimed && claimed !== namespace) {
      throw new ProxyNodeError(`node id ${JSON.stringify(node.id)} names namespace ${JSON.stringify(claimed)} but metadata NAMESPACE is ${JSON.stringify(namespace)}`);
    }
  }
  if (!DNS_LABEL.test(namespace)) throw new ProxyNodeError(`namespace ${JSON.stringify(namespace)} is not a DNS label`);

  const serviceAccount = optionalString(md, 'SERVICE_ACCOUNT') ?? 'default';
  if (serviceAccount.includes('/') || serviceAccount === '') throw new ProxyNodeError(`SERVICE_ACCOUNT ${JSON.stringify(serviceAccount)} is not a valid name`);
  const workloadName = optionalString(md, 'WORKLOAD_NAME');
  const labels = parseLabels(md['LABELS']);

  const identity: ProxyIdentity = {
    nodeId: node.id,
    ip,
    namespace,
    serviceAccount,
    labels,
    trustDomain,
    spiffeId: spiffeIdOf(trustDomain, namespace, serviceAccount),
  };
  if (workloadName !== undefined) identity.workloadName = workloadName;
  const l = node.locality;
  if (l && (l.region || l.zone || l.subZone)) identity.locality = { ...l };
  return identity;
}

/**
 * The same as {@link parseProxyNode}, under the name the control plane uses: the identity an xDS
 * node claims (to be checked against its client certificate's SPIFFE ID).
 */
export const proxyIdentityFromNode: (node: ProxyNodeInput, trustDomain: string) => ProxyIdentity = parseProxyNode;

/** `spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>` (Istio's SPIFFE ID layout). */
export function spiffeIdOf(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

function optionalString(md: Record<string, unknown>, key: string): string | undefined {
  const v = md[key];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw new ProxyNodeError(`node metadata ${key} must be a string, got ${typeof v}`);
  return v;
}

function parseLabels(raw: unknown): Record<string, string> {
  if (raw === undefined || raw === null || raw === '') return {};
  let value: unknown = raw;
  if (typeof raw === 'string') {
    try {
      value = JSON.parse(raw) as unknown;
    } catch {
      throw new ProxyNodeError('node metadata LABELS is a string but not JSON');
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ProxyNodeError('node metadata LABELS must be an object of strings');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v !== 'string') throw new ProxyNodeError(`node metadata LABELS.${k} must be a string`);
    out[k] = v;
  }
  return out;
}
