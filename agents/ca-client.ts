/**
 * The agent's client for the control plane's CA: channel credentials that verify the control
 * plane, and one `istio.v1.auth.IstioCertificateService/CreateCertificate` call (Skiff's
 * `src/xds/protos/istio/ca.proto`, wire-compatible with Istio's `security/v1alpha1/ca.proto`).
 */
import net from 'node:net';
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { messageType } from '../src/xds/protos/loader.js';
import { splitHostPort } from './config.js';

/** Full gRPC method path of the Istio CA's CreateCertificate. */
export const CREATE_CERTIFICATE_PATH = '/istio.v1.auth.IstioCertificateService/CreateCertificate';

/** What the agent needs to open a TLS channel to the control plane. */
export interface ControlPlaneTlsOptions {
  /** PEM trust bundle that signed the control plane's serving certificate. */
  rootsPem: string;
  /** The control plane's SPIFFE ID (`spiffe://<td>/ns/skiff-system/sa/skiff-control-plane`). */
  controlPlaneSpiffeId: string;
  /** The agent's current SVID, presented as TLS client certificate (renewal over mTLS). */
  client?: { keyPem: string; certChainPem: string };
  /**
   * The host dialed, checked against DNS/IP SANs when the SPIFFE ID does not match. Give it when
   * the channel overrides the TLS server name (see {@link channelOptionsFor}).
   */
  host?: string;
}

/** SNI sent when the control plane is dialed by IP address (RFC 6066 allows only host names). */
export const CONTROL_PLANE_SNI = 'skiff-control-plane';

/**
 * grpc-js channel options for dialing `address`: when the host is an IP literal, the TLS server
 * name is overridden with {@link CONTROL_PLANE_SNI} (grpc-js would otherwise send the IP as SNI,
 * which RFC 6066 forbids and Node warns about); pass the real host in
 * {@link ControlPlaneTlsOptions.host} so the SAN check still uses it.
 */
export function channelOptionsFor(address: string): grpc.ChannelOptions {
  const host = splitHostPort(address)?.host ?? address;
  return net.isIP(host) ? { 'grpc.ssl_target_name_override': CONTROL_PLANE_SNI } : {};
}

/** The URI SANs of a peer certificate as Node reports it (`subjectaltname`: `URI:a, DNS:b, ...`). */
export function uriSans(cert: tls.PeerCertificate): string[] {
  return (cert.subjectaltname ?? '')
    .split(', ')
    .filter((s) => s.startsWith('URI:'))
    .map((s) => s.slice(4));
}

/**
 * A `checkServerIdentity` that accepts the control plane when its certificate carries its SPIFFE
 * ID as URI SAN (DESIGN.md §4), or else when a DNS/IP SAN matches the host dialed (Node's
 * standard RFC 6125 check). The chain itself is verified against the trust bundle by TLS.
 */
export function controlPlaneIdentityCheck(controlPlaneSpiffeId: string, dialedHost?: string): (host: string, cert: tls.PeerCertificate) => Error | undefined {
  return (sniHost, cert) => {
    if (uriSans(cert).includes(controlPlaneSpiffeId)) return undefined;
    const host = dialedHost ?? sniHost;
    const err = tls.checkServerIdentity(host, cert);
    if (!err) return undefined;
    return new Error(`control plane certificate has neither URI SAN ${controlPlaneSpiffeId} nor a SAN matching ${host}: ${err.message}`);
  };
}

/** gRPC channel credentials for the control plane, with the agent's SVID as client cert when given. */
export function controlPlaneCredentials(opts: ControlPlaneTlsOptions): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(
    Buffer.from(opts.rootsPem),
    opts.client ? Buffer.from(opts.client.keyPem) : null,
    opts.client ? Buffer.from(opts.client.certChainPem) : null,
    { checkServerIdentity: controlPlaneIdentityCheck(opts.controlPlaneSpiffeId, opts.host) },
  );
}

/** A failed CreateCertificate call; `retryable` is false when retrying cannot help (bad token, refused CSR). */
export class CaRequestError extends Error {
  constructor(
    message: string,
    readonly code: grpc.status | undefined,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'CaRequestError';
  }
}

const NOT_RETRYABLE = new Set<grpc.status>([grpc.status.UNAUTHENTICATED, grpc.status.PERMISSION_DENIED, grpc.status.INVALID_ARGUMENT, grpc.status.UNIMPLEMENTED]);

/** Parameters of {@link createCertificate}. */
export interface CreateCertificateRequest {
  /** `host:port` of the control plane's TLS port. */
  address: string;
  credentials: grpc.ChannelCredentials;
  /** PEM PKCS#10 CSR. */
  csrPem: string;
  /** Requested lifetime in seconds (0 or undefined: the CA's default). */
  validitySeconds?: number;
  /** Bootstrap token, sent as `authorization: Bearer <token>` (first issue). */
  token?: string;
  /** Deadline for the call, default 15 s. */
  timeoutMs?: number;
  /** Cancels the call (for example when the agent stops). */
  signal?: AbortSignal;
}

/**
 * Calls CreateCertificate once and returns the response's `cert_chain` (PEM strings, leaf first,
 * root(s) last). Throws {@link CaRequestError} on a gRPC error or an empty chain.
 */
export async function createCertificate(req: CreateCertificateRequest): Promise<string[]> {
  const Request = messageType('istio.v1.auth.IstioCertificateRequest');
  const Response = messageType('istio.v1.auth.IstioCertificateResponse');
  const client = new grpc.Client(req.address, req.credentials, { 'grpc.use_local_subchannel_pool': 1, ...channelOptionsFor(req.address) });
  const metadata = new grpc.Metadata();
  if (req.token) metadata.set('authorization', `Bearer ${req.token}`);
  try {
    let onAbort: (() => void) | undefined;
    const chain = await new Promise<string[]>((resolve, reject) => {
      const call = client.makeUnaryRequest(
        CREATE_CERTIFICATE_PATH,
        (value: { csr: string; validityDuration?: number }) => Buffer.from(Request.encode(Request.fromObject(value)).finish()),
        (bytes: Buffer) => (Response.toObject(Response.decode(bytes), { arrays: true }) as { certChain: string[] }).certChain,
        { csr: req.csrPem, ...(req.validitySeconds ? { validityDuration: req.validitySeconds } : {}) },
        metadata,
        { deadline: Date.now() + (req.timeoutMs ?? 15_000) },
        (err, value) => {
          if (err) reject(new CaRequestError(`CreateCertificate failed: ${grpc.status[err.code] ?? err.code}: ${err.details}`, err.code, !NOT_RETRYABLE.has(err.code)));
          else resolve(value ?? []);
        },
      );
      onAbort = () => call.cancel();
      if (req.signal?.aborted) call.cancel();
      else req.signal?.addEventListener('abort', onAbort, { once: true });
    }).finally(() => {
      if (onAbort) req.signal?.removeEventListener('abort', onAbort);
    });
    if (chain.length === 0) throw new CaRequestError('CreateCertificate returned an empty certificate chain', undefined, true);
    return chain;
  } finally {
    client.close();
  }
}
