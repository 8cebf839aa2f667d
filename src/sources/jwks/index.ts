/** The JWKS fetcher: keys of RequestAuthentication `jwksUri`s, fetched by the control plane. */
export { createJwksFetcher, type JwksFetcher, type JwksFetcherOptions } from './fetcher.js';
