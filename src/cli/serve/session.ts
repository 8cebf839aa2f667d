/**
 * The session-token service of `skiff serve` (`skiff.session.v1.SessionTokens`, issue 6 §3) on the
 * mTLS gRPC port: a node agent presents its current X.509-SVID as the TLS client certificate and
 * gets a short-lived bearer token for that same identity (`src/identity/session-tokens.ts`) to
 * hand to ztunnel. Bearer tokens are not accepted here: a session token cannot mint another one,
 * and neither can a bootstrap token. An SVID descending from a revoked bootstrap token is refused.
 */
import * as grpc from '@grpc/grpc-js';
import { revokedTokenOf, verifiedPeerFromCall, type CertificateLineage } from '../../ca/service.js';
import { SessionTokenIssuer } from '../../identity/session-tokens.js';
import type { TokenAuthority } from '../../identity/tokens.js';
import type { Logger } from '../../observability/logger.js';
import { sessionTokensServiceDefinition, type CreateSessionTokenRequestMessage, type SessionTokenMessage } from '../../xds/protos/skiff/session.js';

/** Inputs of {@link addSessionTokenService}. */
export interface SessionTokenServiceOptions {
  /** Data dir holding the token-signing key (opened by the {@link TokenAuthority} first). */
  dataDir: string;
  trustDomain: string;
  /** Roots client SVIDs must chain to, and the CA's intermediates. */
  trustBundlePem: string;
  intermediatesPem?: string;
  /** Lineage of issued certificates (the store's `certificates`). */
  certificates: Pick<CertificateLineage, 'tokenOf'>;
  tokens: Pick<TokenAuthority, 'isRevoked'>;
  logger: Logger;
}

/** The service's definition and handlers, for `server.addService`. */
export async function createSessionTokenService(opts: SessionTokenServiceOptions): Promise<{ definition: grpc.ServiceDefinition; implementation: grpc.UntypedServiceImplementation }> {
  const issuer = await SessionTokenIssuer.open({ dataDir: opts.dataDir, trustDomain: opts.trustDomain, logger: opts.logger });
  const lineage: Pick<CertificateLineage, 'tokenOf'> & CertificateLineage = { tokenOf: (serial) => opts.certificates.tokenOf(serial), record: async () => undefined };

  const handle = async (call: grpc.ServerUnaryCall<CreateSessionTokenRequestMessage, SessionTokenMessage>): Promise<SessionTokenMessage> => {
    const peer = verifiedPeerFromCall(call, opts.trustBundlePem, opts.intermediatesPem);
    if (!peer) throw Object.assign(new Error('a session token needs your current SVID as the TLS client certificate'), { code: grpc.status.UNAUTHENTICATED });
    const revoked = await revokedTokenOf(lineage, opts.tokens, peer.serial);
    if (revoked !== undefined) {
      opts.logger.warn({ spiffeId: peer.spiffeId, serial: peer.serial, jti: revoked }, 'session token refused: the client certificate descends from a revoked bootstrap token');
      throw Object.assign(new Error(`client certificate refused: it was issued with bootstrap token ${revoked}, which was revoked`), { code: grpc.status.UNAUTHENTICATED });
    }
    const origin = await opts.certificates.tokenOf(peer.serial);
    // A session token never outlives the SVID that obtained it.
    const svidLeftSeconds = Math.floor((peer.notAfter.getTime() - Date.now()) / 1000);
    const ttlSeconds = Math.min(SessionTokenIssuer.grantedTtl(call.request.ttlSeconds), svidLeftSeconds);
    let issued;
    try {
      issued = await issuer.issue({ spiffeId: peer.spiffeId, ...(origin !== undefined ? { lineage: origin } : {}), ttlSeconds });
    } catch (err) {
      throw Object.assign(new Error((err as Error).message), { code: grpc.status.PERMISSION_DENIED });
    }
    opts.logger.info({ spiffeId: peer.spiffeId, serial: peer.serial, lineage: origin, expiresAt: issued.expiresAt.toISOString() }, 'session token issued');
    return { token: issued.token, expiresAtUnixSeconds: Math.floor(issued.expiresAt.getTime() / 1000), spiffeId: issued.spiffeId };
  };

  const createSessionToken: grpc.handleUnaryCall<CreateSessionTokenRequestMessage, SessionTokenMessage> = (call, callback) => {
    handle(call).then(
      (res) => callback(null, res),
      (err: unknown) => {
        const code = (err as { code?: unknown }).code;
        if (typeof code === 'number') {
          callback({ code, details: (err as Error).message });
          return;
        }
        opts.logger.error({ err }, 'CreateSessionToken failed');
        callback({ code: grpc.status.INTERNAL, details: 'internal error while issuing a session token' });
      },
    );
  };
  return { definition: sessionTokensServiceDefinition(), implementation: { CreateSessionToken: createSessionToken } };
}

/** Creates the service and adds it to `server` (the mTLS gRPC server of port 15012). */
export async function addSessionTokenService(server: grpc.Server, opts: SessionTokenServiceOptions): Promise<void> {
  const service = await createSessionTokenService(opts);
  server.addService(service.definition, service.implementation);
}
