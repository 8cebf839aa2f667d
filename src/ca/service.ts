/**
 * The Istio CA wire protocol for @grpc/grpc-js:
 * `istio.v1.auth.IstioCertificateService/CreateCertificate` (messages in
 * `src/xds/protos/istio/ca.proto`, wire-compatible with Istio's `security/v1alpha1/ca.proto`).
 *
 * The identity in the issued certificate comes from who the caller proved to be, never from the
 * CSR (DESIGN.md §4). Authentication, in order:
 * 1. `authorization: Bearer <JWT>` metadata: a bootstrap token, checked by
 *    {@link TokenAuthority.verify}; a single-use token is consumed once the certificate is signed.
 * 2. Otherwise (or if the token is refused) the caller's current SVID presented as the TLS client
 *    certificate, checked against the trust bundle: a renewal for that identity. So an expired
 *    bootstrap token never strands an agent that still holds a valid SVID.
 *
 * Revocation (issue 4): with a {@link CertificateLineage} every issued certificate's serial is
 * recorded with the bootstrap token it came from (a renewal inherits the token of the certificate
 * it renews). A renewal whose client certificate descends from a revoked token is refused
 * (UNAUTHENTICATED), so revoking a token cuts off every certificate it led to.
 *
 * Impersonation (Istio's `ImpersonatedIdentity` request metadata, used by node proxies such as
 * ztunnel in shared mode to get certificates for the workloads they serve): honoured only when
 * the authenticated caller is a node identity on the allow-list (`trustedNodeAccounts`, Istio's
 * `CA_TRUSTED_NODE_ACCOUNTS`, entries `<namespace>/<serviceAccount>`); the certificate is then
 * for the impersonated SPIFFE ID (still checked by the CA: this trust domain, the CSR's SAN). Any
 * other caller sending it is refused with UNAUTHENTICATED. The `clusterid` call metadata (sent by
 * ztunnel and Istio agents) is accepted and logged; Skiff has one cluster.
 *
 * gRPC status codes: UNAUTHENTICATED when no credential is valid (the message says why, e.g.
 * "bootstrap token refused: token expired"); PERMISSION_DENIED when the CSR asks for another
 * identity (logged with both identities) or the identity is outside this trust domain;
 * INVALID_ARGUMENT for a bad CSR, several SANs, an unsupported key or a TTL above 90 days.
 * Outcomes are counted in `metrics.csrSigned` (`ok`, `denied`, `invalid`, `unauthenticated`,
 * `error`).
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../observability/logger.js';
import type { ControlPlaneMetrics } from '../observability/metrics.js';
import { messageType } from '../xds/protos/loader.js';
import { TokenError, type TokenAuthority, type VerifiedToken } from '../identity/tokens.js';
import { PeerAuthError, authenticateCallPeer, verifyCallIdentity, type CallWithAuthContext, type VerifiedPeer } from '../identity/peer.js';
import { VerifiedPeerCache } from './peer-cache.js';
import { parseSpiffeId } from '../identity/spiffe.js';
import { CaError, type CaErrorCode } from './errors.js';
import type { CertificateAuthority, IssuedSvid } from './authority.js';

export { verifyCallIdentity } from '../identity/peer.js';

/** Full gRPC method path of CreateCertificate. */
export const CREATE_CERTIFICATE_PATH = '/istio.v1.auth.IstioCertificateService/CreateCertificate';

/** `IstioCertificateRequest` in protobufjs object form. */
export interface IstioCertificateRequest {
  /** PEM PKCS#10 CSR. */
  csr: string;
  /** Requested lifetime in seconds; 0 = the CA's default (24 h). */
  validityDuration: number;
  metadata?: unknown;
}

/** `IstioCertificateResponse` in protobufjs object form: PEM certificates, leaf first, roots last. */
export interface IstioCertificateResponse {
  certChain: string[];
}

/**
 * Which bootstrap token each issued certificate descends from (the store's `certificates`
 * implements it). Serials are uppercase hex as `X509Certificate.serialNumber` prints them.
 */
export interface CertificateLineage {
  record(cert: { serial: string; spiffeId: string; jti?: string; notAfter: Date }): Promise<void>;
  /** The token a certificate descends from; undefined if none or not recorded. */
  tokenOf(serial: string): Promise<string | undefined>;
}

/** Dependencies of {@link createCaService}. */
export interface CaServiceOptions {
  ca: CertificateAuthority;
  tokens: TokenAuthority;
  /** Roots that client SVIDs must chain to (normally `ca.trustBundlePem()`). */
  trustBundlePem: string;
  logger: Logger;
  metrics: Pick<ControlPlaneMetrics, 'csrSigned'>;
  /** Records issued certificates and refuses renewals from revoked tokens; optional. */
  certificates?: CertificateLineage;
  /**
   * Node identities (`<namespace>/<serviceAccount>`) allowed to request certificates for other
   * identities with `ImpersonatedIdentity` metadata. Default: none.
   */
  trustedNodeAccounts?: readonly string[];
}

/** The request metadata key of Istio's impersonation (security.ImpersonatedIdentity). */
export const IMPERSONATED_IDENTITY = 'ImpersonatedIdentity';

/** `ImpersonatedIdentity` from a request's `metadata` Struct (protobufjs object form), if set. */
function impersonatedIdentity(metadata: unknown): string | undefined {
  const fields = (metadata as { fields?: Record<string, { stringValue?: string }> } | undefined)?.fields;
  const value = fields?.[IMPERSONATED_IDENTITY]?.stringValue;
  return value === undefined || value === '' ? undefined : value;
}

/** A grpc-js service: pass both to `server.addService(definition, implementation)`. */
export interface CaService {
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
}

/** The gRPC service definition of `istio.v1.auth.IstioCertificateService`. */
export function caServiceDefinition(): grpc.ServiceDefinition {
  const reqType = messageType('istio.v1.auth.IstioCertificateRequest');
  const resType = messageType('istio.v1.auth.IstioCertificateResponse');
  const method: grpc.MethodDefinition<IstioCertificateRequest, IstioCertificateResponse> = {
    path: CREATE_CERTIFICATE_PATH,
    requestStream: false,
    responseStream: false,
    originalName: 'createCertificate',
    requestSerialize: (req) => Buffer.from(reqType.encode(reqType.fromObject(req)).finish()),
    requestDeserialize: (buf) => reqType.toObject(reqType.decode(buf), { longs: Number, defaults: true }) as IstioCertificateRequest,
    responseSerialize: (res) => Buffer.from(resType.encode(resType.fromObject(res)).finish()),
    responseDeserialize: (buf) => resType.toObject(resType.decode(buf), { defaults: true }) as IstioCertificateResponse,
  };
  return { CreateCertificate: method };
}

type Outcome = 'ok' | 'denied' | 'invalid' | 'unauthenticated' | 'error';

class Refusal extends Error {
  constructor(
    readonly code: grpc.status,
    readonly outcome: Outcome,
    message: string,
  ) {
    super(message);
  }
}

const CA_ERROR_STATUS: Record<CaErrorCode, { code: grpc.status; outcome: Outcome }> = {
  'invalid-ttl': { code: grpc.status.INVALID_ARGUMENT, outcome: 'invalid' },
  'bad-csr': { code: grpc.status.INVALID_ARGUMENT, outcome: 'invalid' },
  'unsupported-key': { code: grpc.status.INVALID_ARGUMENT, outcome: 'invalid' },
  'identity-mismatch': { code: grpc.status.PERMISSION_DENIED, outcome: 'denied' },
  'invalid-identity': { code: grpc.status.PERMISSION_DENIED, outcome: 'denied' },
  'ca-config': { code: grpc.status.INTERNAL, outcome: 'error' },
  'ca-expired': { code: grpc.status.UNAVAILABLE, outcome: 'error' },
};

interface Caller {
  spiffeId: string;
  via: 'token' | 'svid';
  token?: VerifiedToken;
  peer?: VerifiedPeer;
}

/**
 * Builds the CreateCertificate service. See the module comment for authentication, status codes
 * and metrics.
 */
export function createCaService(opts: CaServiceOptions): CaService {
  const { ca, tokens, trustBundlePem, logger, metrics, certificates } = opts;
  const intermediatesPem = ca.intermediatesPemBundle();
  const verifiedPeers = new VerifiedPeerCache({ trustBundlePem, intermediatesPem });

  async function authenticate(call: grpc.ServerUnaryCall<IstioCertificateRequest, IstioCertificateResponse>): Promise<Caller> {
    let tokenError: TokenError | undefined;
    const auth = call.metadata.get('authorization');
    if (auth.length > 0) {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(String(auth[0]));
      if (!match?.[1]) {
        tokenError = new TokenError('malformed', 'authorization metadata is not "Bearer <token>"');
      } else {
        try {
          const token = await tokens.verify(match[1]);
          return { spiffeId: token.spiffeId, via: 'token', token };
        } catch (err) {
          if (!(err instanceof TokenError)) throw err;
          tokenError = err;
        }
      }
    }
    let peerError: PeerAuthError | undefined;
    try {
      const peer = verifiedPeers.authenticate(call);
      if (peer) return { spiffeId: peer.spiffeId, via: 'svid', peer };
    } catch (err) {
      if (!(err instanceof PeerAuthError)) throw err;
      peerError = err;
    }
    const reasons: string[] = [];
    if (tokenError) reasons.push(`bootstrap token refused: ${tokenError.message}`);
    if (peerError) reasons.push(`client certificate refused: ${peerError.message}`);
    if (reasons.length === 0) {
      reasons.push('no credentials: send "authorization: Bearer <bootstrap token>" or present your current SVID as the TLS client certificate');
    }
    logger.warn({ tokenReason: tokenError?.reason, peerReason: peerError?.message, peerAddress: call.getPeer() }, 'CSR refused: caller not authenticated');
    throw new Refusal(grpc.status.UNAUTHENTICATED, 'unauthenticated', reasons.join('; '));
  }

  const trustedNodes = new Set(opts.trustedNodeAccounts ?? []);
  for (const account of trustedNodes) {
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(account)) {
      throw new Error(`trusted node account ${JSON.stringify(account)}: expected <namespace>/<serviceAccount>`);
    }
  }

  async function handle(call: grpc.ServerUnaryCall<IstioCertificateRequest, IstioCertificateResponse>): Promise<IstioCertificateResponse> {
    const caller = await authenticate(call);
    const callerId = parseSpiffeId(caller.spiffeId);
    if (callerId.trustDomain !== ca.trustDomain) {
      throw new Refusal(grpc.status.PERMISSION_DENIED, 'denied', `${caller.spiffeId} is not in trust domain ${ca.trustDomain}`);
    }
    const clusterId = call.metadata.get('clusterid')[0];
    let subject = caller.spiffeId;
    const impersonated = impersonatedIdentity(call.request.metadata);
    if (impersonated !== undefined) {
      if (!trustedNodes.has(`${callerId.namespace}/${callerId.serviceAccount}`)) {
        logger.warn({ caller: caller.spiffeId, impersonated, trustedNodeAccounts: [...trustedNodes] }, 'CSR refused: impersonation by an identity that is not a trusted node account');
        throw new Refusal(grpc.status.UNAUTHENTICATED, 'unauthenticated', 'request impersonation authentication failure');
      }
      logger.info({ caller: caller.spiffeId, impersonated, clusterId: clusterId === undefined ? undefined : String(clusterId) }, 'CSR on behalf of another identity by a trusted node account');
      subject = impersonated;
    }
    // The bootstrap token this certificate will descend from: the one presented, or the lineage
    // of the certificate being renewed.
    let lineage = caller.token?.jti;
    if (caller.via === 'svid' && caller.peer && certificates) {
      lineage = await certificates.tokenOf(caller.peer.serial);
      if (lineage !== undefined && (await tokens.isRevoked(lineage))) {
        logger.warn({ spiffeId: caller.spiffeId, serial: caller.peer.serial, jti: lineage }, 'renewal refused: the certificate descends from a revoked bootstrap token');
        throw new Refusal(grpc.status.UNAUTHENTICATED, 'unauthenticated', `client certificate refused: it was issued with bootstrap token ${lineage}, which was revoked`);
      }
    }
    const req = call.request;
    const ttl = Number(req.validityDuration ?? 0);
    if (!Number.isFinite(ttl) || ttl < 0) throw new Refusal(grpc.status.INVALID_ARGUMENT, 'invalid', `validity_duration must be >= 0 seconds, got ${ttl}`);
    let issued: IssuedSvid;
    try {
      issued = await ca.signSvid(req.csr ?? '', { spiffeId: subject, ttlSeconds: ttl === 0 ? undefined : ttl });
    } catch (err) {
      if (!(err instanceof CaError)) throw err;
      const mapped = CA_ERROR_STATUS[err.code];
      if (err.code === 'identity-mismatch') {
        logger.warn({ authenticated: caller.spiffeId, via: caller.via, jti: caller.token?.jti, error: err.message }, 'CSR refused: it asks for another identity');
      } else {
        logger.info({ spiffeId: caller.spiffeId, via: caller.via, code: err.code, error: err.message }, 'CSR refused');
      }
      throw new Refusal(mapped.code, mapped.outcome, err.message);
    }
    const serial = issued.serial;
    if (certificates) {
      await certificates.record({ serial, spiffeId: subject, ...(lineage !== undefined ? { jti: lineage } : {}), notAfter: issued.notAfter });
    }
    if (caller.token?.singleUse) {
      try {
        await tokens.consume(caller.token);
      } catch (err) {
        if (!(err instanceof TokenError)) throw err;
        logger.warn({ jti: caller.token.jti, spiffeId: caller.spiffeId }, 'CSR refused: single-use token replayed');
        throw new Refusal(grpc.status.UNAUTHENTICATED, 'unauthenticated', `bootstrap token refused: ${err.message}`);
      }
    }
    logger.info(
      {
        spiffeId: subject,
        ...(subject !== caller.spiffeId ? { caller: caller.spiffeId } : {}),
        via: caller.via,
        jti: caller.token?.jti,
        lineage,
        serial,
        renewedSerial: caller.peer?.serial,
        ttlSeconds: ttl || undefined,
        clusterId: clusterId === undefined ? undefined : String(clusterId),
      },
      'certificate issued',
    );
    return { certChain: issued.chain };
  }

  const createCertificate: grpc.handleUnaryCall<IstioCertificateRequest, IstioCertificateResponse> = (call, callback) => {
    handle(call).then(
      (res) => {
        metrics.csrSigned.inc({ outcome: 'ok' });
        callback(null, res);
      },
      (err: unknown) => {
        if (err instanceof Refusal) {
          metrics.csrSigned.inc({ outcome: err.outcome });
          callback({ code: err.code, details: err.message });
          return;
        }
        metrics.csrSigned.inc({ outcome: 'error' });
        logger.error({ err }, 'CreateCertificate failed');
        callback({ code: grpc.status.INTERNAL, details: 'internal error while signing' });
      },
    );
  };

  return { definition: caServiceDefinition(), implementation: { CreateCertificate: createCertificate } };
}

/**
 * The verified SPIFFE ID of a grpc-js server call's TLS client certificate, or undefined if it
 * sent none or it does not chain to `trustBundlePem` (through `intermediatesPem`, the CA's own
 * intermediates, when the signing CA is not a root). For the xDS server's stream authorization.
 */
export function peerSpiffeIdFromCall(call: CallWithAuthContext, trustBundlePem: string, intermediatesPem?: string): string | undefined {
  return verifyCallIdentity(call, intermediatesPem ? { trustBundlePem, intermediatesPem } : { trustBundlePem });
}

/**
 * The verified TLS client of a grpc-js server call (SPIFFE ID, serial, NotAfter), or undefined if
 * it sent no certificate or one that does not chain to `trustBundlePem` (see
 * {@link peerSpiffeIdFromCall}).
 */
export function verifiedPeerFromCall(call: CallWithAuthContext, trustBundlePem: string, intermediatesPem?: string): VerifiedPeer | undefined {
  try {
    return authenticateCallPeer(call, intermediatesPem ? { trustBundlePem, intermediatesPem } : { trustBundlePem });
  } catch (err) {
    if (err instanceof PeerAuthError) return undefined;
    throw err;
  }
}

/**
 * The revoked bootstrap token the certificate `serial` descends from, or undefined (no recorded
 * lineage, or its token is not revoked). The xDS server refuses such a certificate too.
 */
export async function revokedTokenOf(certificates: CertificateLineage, tokens: Pick<TokenAuthority, 'isRevoked'>, serial: string): Promise<string | undefined> {
  const jti = await certificates.tokenOf(serial);
  if (jti === undefined) return undefined;
  return (await tokens.isRevoked(jti)) ? jti : undefined;
}
