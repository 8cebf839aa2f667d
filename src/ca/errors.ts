/**
 * The CA's one error type. The gRPC service maps `code` to a gRPC status in one place
 * (`service.ts`): identity problems to PERMISSION_DENIED, request problems to INVALID_ARGUMENT.
 */

/**
 * Why the CA refused or failed:
 * - `invalid-ttl`: requested lifetime not a positive number of seconds, or above 90 days
 * - `bad-csr`: not a PEM PKCS#10 CSR, bad signature, or SANs other than one URI
 * - `unsupported-key`: CSR key is not ECDSA P-256/P-384 or RSA of 2048 bits or more
 * - `identity-mismatch`: the CSR's URI SAN names another identity than the authenticated one
 * - `invalid-identity`: the identity to sign for is not a SPIFFE ID of this trust domain
 * - `ca-config`: the CA's own key/certificates are missing, unreadable or inconsistent
 * - `ca-expired`: the CA's signing certificate (or its chain) is no longer valid
 */
export type CaErrorCode = 'invalid-ttl' | 'bad-csr' | 'unsupported-key' | 'identity-mismatch' | 'invalid-identity' | 'ca-config' | 'ca-expired';

/** An error from the CA. `message` is safe to return to the caller; it never holds key material. */
export class CaError extends Error {
  constructor(
    readonly code: CaErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'CaError';
  }
}
