/**
 * The shape of the authorization table (issue 3 §4): groups of cases that share one policy set.
 * Each case is one request to the destination workload `b` (namespace `shop`, labels
 * `app: backend, version: v1`, HTTP port 8080, TCP port 9000) and the decision Istio's
 * documentation says it gets. The expected values come from Istio's documentation only (each
 * case cites the page), never from Skiff's code.
 */

/** What the request must get: `allow` (the app answers), `deny` (403 / connection closed), `unauthenticated` (401 from JWT validation). */
export type Expected = 'allow' | 'deny' | 'unauthenticated';

/** Client identities the lab can present over mTLS (X.509-SVIDs from the control plane's CA). */
export const IDENTITIES = {
  /** spiffe://cluster.local/ns/shop/sa/frontend */
  frontend: { namespace: 'shop', serviceAccount: 'frontend' },
  /** spiffe://cluster.local/ns/shop/sa/admin */
  admin: { namespace: 'shop', serviceAccount: 'admin' },
  /** spiffe://cluster.local/ns/other/sa/frontend: same service account name, other namespace. */
  otherFrontend: { namespace: 'other', serviceAccount: 'frontend' },
} as const;

/** A client identity name. */
export type IdentityName = keyof typeof IDENTITIES;

/** JWTs the lab can send (see `tokens` in the case context). */
export type TokenName =
  | 'alice'
  | 'bob'
  | 'aliceOtherPresenter'
  | 'aliceFewGroups'
  | 'expired'
  | 'wrongAudience'
  | 'wrongIssuer'
  | 'badSignature'
  | 'issuer2'
  | 'issuer2BadSignature';

/** One request. Defaults: HTTP port, plaintext, source `c1`, GET `/`, Host `backend.shop.svc.cluster.local`. */
export interface CaseRequest {
  /** `http`: port 8080 (HTTP/1.1); `tcp`: port 9000 (bytes echoed back when allowed). */
  port?: 'http' | 'tcp';
  /** Present this identity over mTLS; plaintext when absent. */
  peer?: IdentityName;
  /** TLS SNI to send (mTLS only); default `outbound_.<port>_._.backend.shop.svc.cluster.local`. */
  sni?: string;
  /** Source address: `c1` (198.18.<subnet>.100) or `c2` (.101). */
  client?: 'c1' | 'c2';
  method?: string;
  /** Request target as sent (query included). */
  path?: string;
  /** The Host header, case preserved. */
  host?: string;
  headers?: Record<string, string>;
  /** `x-forwarded-for` value; a literal address, or `c1`/`c2` for a client address. */
  xff?: string;
  /** Sends `authorization: Bearer <token>`. */
  jwt?: TokenName;
}

/** One row of the table. */
export interface AuthzCase {
  /** Says what it tests, e.g. `deny-with-empty-rule-beats-allow`. */
  name: string;
  request: CaseRequest;
  expect: Expected;
  /** Where Istio documents the expected behaviour (URL, and what it says in short). */
  doc: string;
}

/** Values the policy YAML needs that are known only once the lab runs. */
export interface CaseContext {
  /** b's address. */
  bIp: string;
  /** The host's client source addresses. */
  c1: string;
  c2: string;
  /** Issuer and inline JWKS (JSON string) of the main test issuer. */
  issuer: string;
  jwks: string;
  /** Issuer whose keys are served at `jwksUri`. */
  issuer2: string;
  jwksUri: string;
  /** Name of the CUSTOM extension provider in the control plane's MeshConfig. */
  extAuthzProvider: string;
}

/** Cases sharing one policy set. */
export interface AuthzGroup {
  /** Names the policy set. */
  name: string;
  /** Multi-document YAML of the policy set (may be empty: no policy). */
  policies(ctx: CaseContext): string;
  cases: AuthzCase[];
}
