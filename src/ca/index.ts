/**
 * The SPIFFE CA (DESIGN.md §4): {@link CertificateAuthority} signs X.509-SVIDs, `service.ts`
 * serves Istio's CreateCertificate over gRPC, `credentials.ts` builds the TLS credentials of
 * port 15012.
 */
export { CertificateAuthority, CA_FILES, DEFAULT_SVID_TTL_SECONDS, MAX_SVID_TTL_SECONDS, MAX_BACKDATE_SECONDS, ROOT_TTL_SECONDS } from './authority.js';
export type { CaOptions, SignOptions, ServingCertOptions, ServingCert } from './authority.js';
export { CaError } from './errors.js';
export type { CaErrorCode } from './errors.js';
