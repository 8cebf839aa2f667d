/** The snapshot cache: per-node resources with content-hash versions, checked before publishing. */
export { createSnapshotCache, isWildcardRequest, type NodeSnapshot, type SnapshotCache, type SnapshotCacheOptions } from './snapshot-cache.js';
export { SnapshotInconsistentError, type SnapshotProblem } from './errors.js';
export { contentVersion, resourceSetVersion, resourcesByType, versionedResource } from './version.js';
