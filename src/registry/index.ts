/**
 * The registry (DESIGN.md §1): one merged, versioned, indexed snapshot of every source.
 */
export { createRegistry, type Registry, type RegistryOptions, type SnapshotListener, type SourceChanges } from './registry.js';
export { buildSnapshot, namespacedName } from './snapshot.js';
export { selectWorkloads, servicesForWorkload } from './select.js';
export { endpointsOfService, endpointPort, type ServiceEndpoint } from './endpoints.js';
export type { ChangeEvent, MeshSnapshot } from './types.js';
export { withConditions, type StatusOverlay } from './status-overlay.js';
