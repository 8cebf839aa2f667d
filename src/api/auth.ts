/**
 * Who is calling the API, and what they may do.
 *
 * Authentication (one of):
 * - `Authorization: Bearer <admin token>`: looked up by SHA-256 in the store (`admin-tokens.ts`);
 *   an admin, possibly scoped to namespaces.
 * - A TLS client certificate (when the API listens with `--api-tls`): an X.509-SVID that chains
 *   to the mesh trust bundle (checked here with `verifyPeerChain`, SPIFFE X509-SVID §4/§5), its
 *   SPIFFE ID `spiffe://<td>/ns/<ns>/sa/<sa>` mapped to an agent identity.
 * A bearer token, when sent, takes precedence; a bad one is 401 even if a certificate is present.
 *
 * Authorization:
 * - {@link requireAdmin}: agents may not manage resources or tokens (403).
 * - {@link requireNamespace} / {@link visibleNamespaces}: a namespace-scoped admin token acts only
 *   in its namespaces (403 outside them; listings are filtered to them).
 * - {@link authorizeIdentity}: an agent may register or report only for its own identity; an
 *   admin for identities in its namespaces. The registration and health routes use it.
 */
import type { TLSSocket, PeerCertificate } from 'node:tls';
import type { MiddlewareHandler } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { workloadAuthorizationProblem } from '../identity/authorize.js';
import { PeerAuthError, pemToDerList, verifyPeerChain } from '../identity/peer.js';
import { parseSpiffeId } from '../identity/spiffe.js';
import type { AdminTokenStore } from '../store/types.js';
import { hashAdminToken } from './admin-tokens.js';
import { ApiError, forbidden } from './errors.js';

/** An admin authenticated by bearer token. `namespaces` undefined = every namespace. */
export interface AdminPrincipal {
  kind: 'admin';
  tokenId: string;
  namespaces?: readonly string[];
}

/** A node agent authenticated by its SVID (mTLS). */
export interface AgentPrincipal {
  kind: 'agent';
  spiffeId: string;
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

/** The authenticated caller of a request. */
export type Principal = AdminPrincipal | AgentPrincipal;

/** The hono environment of API handlers: node-server bindings and the principal. */
export interface ApiEnv {
  Bindings: HttpBindings;
  Variables: { principal: Principal };
}

/** How the principal appears in the audit log: `admin-token:<id>` or the agent's SPIFFE ID. */
export function actorOf(p: Principal): string {
  return p.kind === 'admin' ? `admin-token:${p.tokenId}` : p.spiffeId;
}

/** Options of {@link authenticate}. */
export interface AuthenticateOptions {
  adminTokens: AdminTokenStore;
  /** Present when the API serves TLS: client SVIDs are checked against these. */
  mtls?: { trustBundlePem: string; intermediatesPem?: string; trustDomain: string };
}

function unauthenticated(detail: string): ApiError {
  return new ApiError(401, 'unauthenticated', detail, undefined, { 'www-authenticate': 'Bearer realm="skiff"' });
}

/** Node's detailed peer certificate: each links to its issuer (a self-signed root to itself). */
type DetailedCertificate = PeerCertificate & { issuerCertificate?: DetailedCertificate };

/** The DER chain (leaf first) a TLS client sent, or undefined. */
function clientChain(socket: unknown): Buffer[] | undefined {
  const tls = socket as Partial<TLSSocket> | undefined;
  if (!tls || typeof tls.getPeerCertificate !== 'function') return undefined;
  const leaf: DetailedCertificate = tls.getPeerCertificate(true);
  if (!leaf || !leaf.raw) return undefined;
  const chain: Buffer[] = [leaf.raw];
  let cur: DetailedCertificate | undefined = leaf.issuerCertificate;
  while (cur?.raw && chain.length < 8 && !chain.some((c) => c.equals(cur!.raw))) {
    chain.push(cur.raw);
    cur = cur.issuerCertificate;
  }
  return chain;
}

/**
 * Middleware: authenticates the caller (see the module comment) and sets `principal`, or throws a
 * 401 {@link ApiError} with `WWW-Authenticate: Bearer`.
 */
export function authenticate(opts: AuthenticateOptions): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const header = c.req.header('authorization');
    if (header !== undefined) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
      if (!m?.[1]) throw unauthenticated('the Authorization header must be "Bearer <admin token>"');
      const record = await opts.adminTokens.findByHash(hashAdminToken(m[1]));
      if (!record) throw unauthenticated('the admin token is not valid (unknown or revoked)');
      c.set('principal', { kind: 'admin', tokenId: record.id, ...(record.namespaces ? { namespaces: record.namespaces } : {}) });
      await next();
      return;
    }
    if (opts.mtls) {
      const chain = clientChain(c.env?.incoming?.socket);
      if (chain) {
        let spiffeId: string;
        try {
          const extra = opts.mtls.intermediatesPem ? pemToDerList(opts.mtls.intermediatesPem) : [];
          spiffeId = verifyPeerChain([...chain, ...extra], opts.mtls.trustBundlePem).spiffeId;
        } catch (err) {
          if (err instanceof PeerAuthError) throw unauthenticated(`client certificate refused: ${err.message}`);
          throw err;
        }
        const parts = parseSpiffeId(spiffeId);
        if (parts.trustDomain !== opts.mtls.trustDomain) throw unauthenticated(`client certificate ${spiffeId} is not in trust domain ${opts.mtls.trustDomain}`);
        c.set('principal', { kind: 'agent', spiffeId, trustDomain: parts.trustDomain, namespace: parts.namespace, serviceAccount: parts.serviceAccount });
        await next();
        return;
      }
    }
    throw unauthenticated(opts.mtls ? 'send "Authorization: Bearer <admin token>" or a client certificate (your SVID)' : 'send "Authorization: Bearer <admin token>"');
  };
}

/** Throws 403 unless the principal is an admin. */
export function requireAdmin(p: Principal): AdminPrincipal {
  if (p.kind !== 'admin') throw forbidden(`${p.spiffeId} is an agent identity: agents may only register or report health for their own identity`);
  return p;
}

/** Throws 403 unless the principal is an admin allowed in `namespace`. */
export function requireNamespace(p: Principal, namespace: string): void {
  const admin = requireAdmin(p);
  if (admin.namespaces && !admin.namespaces.includes(namespace)) {
    throw forbidden(`admin token ${admin.tokenId} is scoped to namespaces ${admin.namespaces.join(', ')}; namespace ${namespace} is outside them`);
  }
}

/**
 * The namespaces a listing may show: `requested` (one namespace) when allowed, else every
 * namespace the token covers (undefined = all). Throws 403 for a requested namespace outside the
 * token's scope, or for an agent.
 */
export function visibleNamespaces(p: Principal, requested?: string): readonly string[] | undefined {
  const admin = requireAdmin(p);
  if (requested !== undefined) {
    requireNamespace(admin, requested);
    return [requested];
  }
  return admin.namespaces;
}

/** A workload identity as the registration and health routes name it. */
export interface WorkloadIdentity {
  namespace: string;
  /** Unset or empty means `default` (Istio). */
  serviceAccount?: string;
}

/**
 * The reusable check of issue 4 §1: may `p` register or report health for `identity`? An agent
 * only for its own SPIFFE ID (the rule of `identity/authorize.ts`, shared with the gRPC
 * registration service); an admin for identities in its namespaces. Throws a 403
 * {@link ApiError} naming both identities otherwise.
 */
export function authorizeIdentity(p: Principal, identity: WorkloadIdentity): void {
  if (p.kind === 'admin') {
    requireNamespace(p, identity.namespace);
    return;
  }
  const problem = workloadAuthorizationProblem(p.spiffeId, { ...identity, trustDomain: p.trustDomain });
  if (problem !== undefined) throw forbidden(`${problem}: an agent may only register or report for its own identity`);
}
