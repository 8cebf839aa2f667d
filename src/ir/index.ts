/** The per-proxy IR: plain data (`types.ts`), its self-check (`validate.ts`) and the authorization vocabulary. */
export * from './types.js';
export { validate, addressesOverlap } from './validate.js';
export { parseWhenKey, parseCidr, parsePortValue, isHttpOnlyAttribute, WHEN_KEYS, HTTP_ONLY_SOURCE_FIELDS, HTTP_ONLY_OPERATION_FIELDS, type WhenAttribute, type CidrIR } from './authz-attributes.js';
