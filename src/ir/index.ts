/** The per-proxy IR: plain data (`types.ts`) and its self-check (`validate.ts`). */
export * from './types.js';
export { validate, addressesOverlap } from './validate.js';
