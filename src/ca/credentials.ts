/**
 * TLS credentials for port 15012 (xDS and the CA) with @grpc/grpc-js.
 *
 * Server: both token-only callers (a new VM, ztunnel) and certificate callers (renewal, xDS) must
 * be accepted, so the server REQUESTS a client certificate but does not REQUIRE one.
 * `ServerCredentials.createSsl(..., checkClientCertificate=false)` does not do that: in grpc-js
 * 1.14 (`server-credentials.ts`) it sets `requestCert: checkClientCertificate`, so no certificate
 * would be asked for at all, and `true` also rejects callers without one. grpc-js's
 * certificate-provider server credentials set `requestCert: true` (when a CA provider is given)
 * and `rejectUnauthorized: requireClientCertificate`, which is what we need. A certificate that
 * OpenSSL verified against the trust bundle then shows up in the call's auth context
 * (`sslPeerCertificate`), where the handlers check it again as an SVID.
 *
 * Client: {@link meshChannelCredentials} trusts only the mesh trust bundle and accepts the
 * server if its certificate carries the expected SPIFFE ID as URI SAN, or else if a DNS/IP SAN
 * matches the host dialed (DESIGN.md §4).
 */
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { uriSans } from '../identity/peer.js';

type CertificateProvider = grpc.experimental.CertificateProvider;
type CaListener = grpc.experimental.CaCertificateUpdateListener;
type IdentityListener = grpc.experimental.IdentityCertificateUpdateListener;

/** PEM material for the server side of port 15012. `keyPem` is secret: never log it. */
export interface MeshServerTlsMaterial {
  /** The server's certificate chain, leaf first (intermediates may follow), PEM. */
  certChainPem: string;
  keyPem: string;
  /** Roots client certificates must chain to, PEM. */
  trustBundlePem: string;
}

/**
 * A grpc-js certificate provider holding the serving certificate, key and trust bundle in memory.
 * {@link update} swaps them (e.g. when the serving certificate is renewed, or a new root is
 * added); new TLS handshakes use the new material, open connections keep theirs.
 */
export class MeshCertificateProvider implements CertificateProvider {
  private material: MeshServerTlsMaterial;
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();

  constructor(material: MeshServerTlsMaterial) {
    this.material = material;
  }

  /** Replaces the material and notifies grpc-js. */
  update(material: MeshServerTlsMaterial): void {
    this.material = material;
    for (const l of this.caListeners) l(this.caUpdate());
    for (const l of this.identityListeners) l(this.identityUpdate());
  }

  /** grpc-js `CertificateProvider`: subscribes to the trust bundle (delivered asynchronously). */
  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    // grpc-js registers its own watcher only after adding provider listeners, so an update
    // delivered synchronously here would be lost: deliver it on the next microtask.
    queueMicrotask(() => {
      if (this.caListeners.has(listener)) listener(this.caUpdate());
    });
  }

  /** grpc-js `CertificateProvider`: unsubscribes from the trust bundle. */
  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  /** grpc-js `CertificateProvider`: subscribes to the serving chain and key (delivered asynchronously). */
  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    queueMicrotask(() => {
      if (this.identityListeners.has(listener)) listener(this.identityUpdate());
    });
  }

  /** grpc-js `CertificateProvider`: unsubscribes from the serving chain and key. */
  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }

  private caUpdate(): grpc.experimental.CaCertificateUpdate {
    return { caCertificate: Buffer.from(this.material.trustBundlePem) };
  }

  private identityUpdate(): grpc.experimental.IdentityCertificateUpdate {
    return { certificate: Buffer.from(this.material.certChainPem), privateKey: Buffer.from(this.material.keyPem) };
  }
}

/**
 * Server credentials for port 15012: TLS with the given serving chain and key, requesting (not
 * requiring) a client certificate verified against `trustBundlePem`. Pass a
 * {@link MeshCertificateProvider} instead of plain material to be able to rotate it later.
 */
export function meshServerCredentials(material: MeshServerTlsMaterial | MeshCertificateProvider): grpc.ServerCredentials {
  const provider = material instanceof MeshCertificateProvider ? material : new MeshCertificateProvider(material);
  // grpc-js 1.14 passes its first argument on as the identity provider and its second as the CA
  // provider (the parameter names are swapped); one provider serves both, so order is moot.
  return grpc.experimental.createCertificateProviderServerCredentials(provider, provider, false);
}

/** Options for {@link meshChannelCredentials}. `keyPem` is secret: never log it. */
export interface MeshChannelOptions {
  /** Roots the server's certificate must chain to, PEM. */
  trustBundlePem: string;
  /** The client's SVID chain (leaf first), for mTLS. Give with `keyPem`. */
  certChainPem?: string;
  keyPem?: string;
  /**
   * Accept the server if its certificate's URI SAN is this SPIFFE ID (e.g. the control plane's
   * `spiffe://<td>/ns/skiff-system/sa/skiff-control-plane`), whatever host was dialed.
   */
  expectedServerSpiffeId?: string;
}

/**
 * Checks a server certificate (after OpenSSL verified its chain against the trust bundle):
 * accepted if its URI SAN equals `expectedSpiffeId`, else if Node's standard hostname check of
 * `host` against its DNS/IP SANs passes. Returns an Error to refuse, undefined to accept.
 */
export function checkMeshServerIdentity(host: string, cert: tls.PeerCertificate, expectedSpiffeId?: string): Error | undefined {
  if (expectedSpiffeId && cert.raw) {
    try {
      if (uriSans(cert.raw).includes(expectedSpiffeId)) return undefined;
    } catch {
      // fall through to the hostname check
    }
  }
  const err = tls.checkServerIdentity(host, cert);
  if (err && expectedSpiffeId) {
    return new Error(`server certificate has neither URI SAN ${expectedSpiffeId} nor a DNS/IP SAN matching ${host}: ${err.message}`);
  }
  return err;
}

/**
 * Channel credentials for agents dialing port 15012: TLS trusting only `trustBundlePem`,
 * optionally presenting a client SVID, and checking the server with
 * {@link checkMeshServerIdentity}.
 */
export function meshChannelCredentials(opts: MeshChannelOptions): grpc.ChannelCredentials {
  if ((opts.certChainPem === undefined) !== (opts.keyPem === undefined)) {
    throw new Error('meshChannelCredentials: certChainPem and keyPem must be given together');
  }
  return grpc.credentials.createSsl(
    Buffer.from(opts.trustBundlePem),
    opts.keyPem !== undefined ? Buffer.from(opts.keyPem) : null,
    opts.certChainPem !== undefined ? Buffer.from(opts.certChainPem) : null,
    { checkServerIdentity: (host, cert) => checkMeshServerIdentity(host, cert, opts.expectedServerSpiffeId) },
  );
}
