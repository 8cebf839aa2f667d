/**
 * The contract of a policy module of the ztunnel translator (DESIGN.md §1): each policy kind is one
 * module `{name, order, ...}` that contributes `istio.security.Authorization` resources for the
 * whole mesh and names the selector-scoped ones that apply to a workload (listed in its
 * `Workload.authorization_policies`). Modules run in ascending `order`, from the explicit list in
 * `policies/index.ts`. The message shapes are protobufjs object form of Skiff's
 * `istio/security.proto` (ztunnel's field names).
 */
import type { MeshSnapshot } from '../../../registry/types.js';

/** `istio.security.StringMatch`: exactly one member set. */
export type StringMatchMessage = { exact: string } | { prefix: string } | { suffix: string } | { presence: Record<string, never> };

/** `istio.security.Address`: a CIDR as raw bytes and prefix length. */
export interface CidrMessage {
  address: Uint8Array;
  length: number;
}

/** `istio.security.ServiceAccountMatch`. */
export interface ServiceAccountMatchMessage {
  namespace: string;
  serviceAccount: string;
}

/** `istio.security.Match`: set fields are AND-ed, values within a field OR-ed. */
export interface MatchMessage {
  namespaces?: StringMatchMessage[];
  notNamespaces?: StringMatchMessage[];
  serviceAccounts?: ServiceAccountMatchMessage[];
  notServiceAccounts?: ServiceAccountMatchMessage[];
  principals?: StringMatchMessage[];
  notPrincipals?: StringMatchMessage[];
  sourceIps?: CidrMessage[];
  notSourceIps?: CidrMessage[];
  destinationIps?: CidrMessage[];
  notDestinationIps?: CidrMessage[];
  destinationPorts?: number[];
  notDestinationPorts?: number[];
}

/** `istio.security.Clause`: its matches are OR-ed. */
export interface ClauseMessage {
  matches: MatchMessage[];
}

/** `istio.security.Rule`: its clauses are AND-ed; a rule without clauses matches every connection. */
export interface RuleMessage {
  clauses: ClauseMessage[];
}

/** `istio.security.Authorization`, the resource named `<namespace>/<name>`. */
export interface AuthorizationMessage {
  name: string;
  namespace: string;
  scope: 'GLOBAL' | 'NAMESPACE' | 'WORKLOAD_SELECTOR';
  action: 'ALLOW' | 'DENY';
  /** OR-ed; none at all never matches (an ALLOW policy without rules denies everything). */
  rules: RuleMessage[];
  dryRun?: boolean;
}

/** What a module reads: the registry snapshot, the root namespace, and where to report problems. */
export interface ZtunnelPolicyContext {
  snapshot: MeshSnapshot;
  /** Policies in this namespace apply mesh-wide (`skiff-system` unless the mesh config says otherwise). */
  rootNamespace: string;
  /** Reports a problem with an input policy, one sentence naming it. */
  warn: (message: string) => void;
}

/** A workload a selector-scoped policy may apply to. */
export interface PolicyTargetWorkload {
  namespace: string;
  labels: Readonly<Record<string, string>>;
}

/** One policy kind's translation for ztunnel. */
export interface ZtunnelPolicyModule {
  /** The resource kind it translates, e.g. `AuthorizationPolicy`. */
  name: string;
  /** Modules run in ascending order. */
  order: number;
  /** The Authorizations of this kind for the whole mesh, computed once per snapshot. */
  authorizations(ctx: ZtunnelPolicyContext): AuthorizationMessage[];
  /** `<namespace>/<name>` of the WORKLOAD_SELECTOR Authorizations of this kind that apply to `workload`. */
  workloadPolicies(ctx: ZtunnelPolicyContext, workload: PolicyTargetWorkload): string[];
}
