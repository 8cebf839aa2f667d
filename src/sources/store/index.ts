/** The store source: API-written resources into the registry (see `source.ts`). */
export { createStoreSource, type StoreSource, type StoreSourceChanges, type StoreSourceOptions } from './source.js';
