/**
 * Inputs and outputs of the reference evaluator (`evaluate.ts`): a destination workload, one
 * request or connection to it, the security policies of the mesh, and the decision Istio's
 * semantics give for them. Plain data; no Envoy or xDS types.
 */
import type { ExtensionProvider } from '../resources/mesh-config.js';
import type { AuthorizationPolicy, AuthzAction, PeerAuthentication, RequestAuthentication } from '../resources/types.js';

/** The security policies to evaluate against (any superset of those that apply is fine). */
export interface EvaluationPolicies {
  authorizationPolicies: readonly AuthorizationPolicy[];
  requestAuthentications?: readonly RequestAuthentication[];
  /** When given, the effective mTLS mode is applied: STRICT refuses a peer without certificate. */
  peerAuthentications?: readonly PeerAuthentication[];
}

/** The workload receiving the request, on one of its inbound ports. */
export interface EvaluationDestination {
  namespace: string;
  /** The workload's labels (what policy selectors match). */
  labels: Readonly<Record<string, string>>;
  /** The destination IP address (`destination.ip`). */
  ip: string;
  /** The inbound port the proxy accepted the connection on (`ports`, `destination.port`). */
  port: number;
  /** How the proxy handles the port: HTTP (incl. HTTP/2, gRPC) or plain TCP. */
  protocol: 'HTTP' | 'TCP';
}

/** The request (HTTP) or connection (TCP) to evaluate. HTTP-only fields are ignored for TCP. */
export interface EvaluationRequest {
  /**
   * The SPIFFE ID of the client certificate (`spiffe://cluster.local/ns/a/sa/b`; the `spiffe://`
   * prefix may be left out), or undefined for a plaintext peer.
   */
  peer?: string;
  /** The IP address of the direct peer (`ipBlocks`, `source.ip`). */
  sourceIp: string;
  /**
   * The original client (`remoteIpBlocks`, `remote.ip`). Default: for HTTP the right-most
   * `x-forwarded-for` entry (Envoy with no trusted hops, as on an Istio sidecar), else `sourceIp`.
   */
  remoteIp?: string;
  /** The Host / :authority header, compared as sent (a port in it is part of it). */
  host?: string;
  method?: string;
  /** The request path; the query and fragment are ignored for matching. */
  path?: string;
  /** Request headers; names are case-insensitive, several values are joined with `,`. */
  headers?: Readonly<Record<string, string | readonly string[]>>;
  /** The TLS SNI the client sent (`connection.sni`). */
  sni?: string;
  /** A bearer token; same as `authorization: Bearer <token>` in `headers`. */
  jwt?: { token: string };
}

/** JWKS JSON by `jwksUri` (or by issuer, for rules without one): a map or a lookup function. */
export type JwksLookup = Readonly<Record<string, string>> | ((uriOrIssuer: string) => string | undefined);

/** What the external authorizer of a CUSTOM policy is asked. */
export interface ExternalAuthzCheck {
  /** The extension provider name (`provider.name`). */
  provider: string;
  /** The CUSTOM policy (`namespace/name`) whose rule matched. */
  policy: string;
  destination: EvaluationDestination;
  request: EvaluationRequest;
}

/** Everything {@link evaluate} needs. */
export interface EvaluationInput {
  policies: EvaluationPolicies;
  /** Policies here apply mesh-wide; default `skiff-system`. */
  rootNamespace?: string;
  /** The mesh's trust domain (principals written with `cluster.local` mean it); default `cluster.local`. */
  trustDomain?: string;
  /** Further trust domains principals are expanded to (MeshConfig `trustDomainAliases`). */
  trustDomainAliases?: readonly string[];
  destination: EvaluationDestination;
  request: EvaluationRequest;
  /** Keys for RequestAuthentication rules that use `jwksUri`. */
  jwks?: JwksLookup;
  /** The evaluation time (JWT `exp`/`nbf`); default now. */
  now?: Date | number;
  /**
   * The extension providers of the mesh config, to check a CUSTOM policy's provider exists and
   * whether it applies to TCP (only `envoyExtAuthzGrpc` does). Without them every provider is
   * assumed to exist and to apply to HTTP and TCP.
   */
  extensionProviders?: readonly ExtensionProvider[];
  /** Answers CUSTOM checks (true = allow). Without it a matching CUSTOM policy denies (fail closed). */
  externalAuthorizer?: (check: ExternalAuthzCheck) => boolean;
}

/** Why a request was allowed or denied. */
export type DecisionStatus =
  /** Allowed: no enforced ALLOW policy applies to the workload. */
  | 'no-allow-policies'
  /** Allowed: an ALLOW policy matched. */
  | 'allowed-by-allow'
  /** Denied (403): a DENY policy matched. */
  | 'denied-by-deny'
  /** Denied (403): ALLOW policies apply but none matched. */
  | 'no-allow-match'
  /** Denied (401): a token was present and failed RequestAuthentication. */
  | 'jwt-invalid'
  /**
   * Denied (403): a token was present, valid, but for none of the rule's `audiences` (Envoy's JWT
   * filter answers 403 for this one failure, 401 for the others).
   */
  | 'jwt-audience-not-allowed'
  /** Denied (403): a CUSTOM policy matched and its external authorizer said no (or was unavailable). */
  | 'custom-denied'
  /** Refused before authorization: PeerAuthentication STRICT and the peer sent no client certificate. */
  | 'mtls-required';

/** A policy rule, named. */
export interface RuleRef {
  /** `namespace/name`. */
  policy: string;
  action: AuthzAction;
  /** Index into `spec.rules`; -1 for a policy without rules. */
  ruleIndex: number;
}

/** A dry-run policy's outcome: recorded, never enforced. */
export interface DryRunResult {
  policy: string;
  action: 'ALLOW' | 'DENY';
  wouldMatch: boolean;
  /** The first matching rule when `wouldMatch`. */
  ruleIndex?: number;
}

/** The claims of a token that passed RequestAuthentication. */
export interface RequestAuth {
  /** `iss/sub`. */
  principal: string;
  /** The payload as Envoy's JWT filter stores it (space-delimited claims split into lists). */
  claims: Readonly<Record<string, unknown>>;
}

/** The outcome of {@link evaluate}. */
export interface Decision {
  allowed: boolean;
  status: DecisionStatus;
  /** The HTTP status a client sees when denied (401, 403); for TCP the connection is closed. */
  httpStatus?: number;
  /** The policy rule that decided, when one did. */
  by?: RuleRef;
  /** One human-readable sentence. */
  reason: string;
  dryRun: DryRunResult[];
  /** AUDIT policy rules that matched (they never change the decision). */
  audit: RuleRef[];
  /** The validated token's identity, when a token passed. */
  requestAuth?: RequestAuth;
  /** Semantics worth knowing about this evaluation (HTTP-only fields on TCP, unknown providers...). */
  warnings: string[];
}
