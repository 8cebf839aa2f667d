/**
 * Content-hash versions (DESIGN.md §1, §11, after Kuma): a resource's version is a hash of its
 * encoded bytes, and the version of a set of resources is a hash over its sorted (name, version)
 * pairs. Equal content gives an equal version on every replica and across restarts, so a proxy
 * that reconnects with the version it already holds gets no needless push.
 */
import { createHash } from 'node:crypto';
import type { EncodedAny } from '../protos/loader.js';
import type { VersionedResource } from '../types.js';

/** Hex characters kept from the SHA-256 digest (64 bits: ample for telling configs apart). */
const VERSION_CHARS = 16;

/** The content version of one encoded resource: the first 16 hex digits of SHA-256(bytes). */
export function contentVersion(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex').slice(0, VERSION_CHARS);
}

/** Wraps an encoded resource as a {@link VersionedResource} named `name` with its content version. */
export function versionedResource(name: string, resource: EncodedAny): VersionedResource {
  return { name, version: contentVersion(resource.value), resource };
}

/**
 * The version of a set of resources: SHA-256 over `name NUL version LF` for each resource in
 * name order (the caller passes them sorted by name). The empty set has a version too, so a
 * client that holds nothing (`''`) always differs from it.
 */
export function resourceSetVersion(sortedByName: readonly VersionedResource[]): string {
  const hash = createHash('sha256');
  for (const r of sortedByName) hash.update(`${r.name}\0${r.version}\n`);
  return hash.digest('hex').slice(0, VERSION_CHARS);
}

/**
 * Groups resources by type URL (taken from each `resource.typeUrl`) and then by name, as a
 * snapshot's `resources`. Throws a `TypeError` on a duplicate (type, name): xDS forbids one
 * response carrying a name twice.
 */
export function resourcesByType(resources: Iterable<VersionedResource>): Map<string, Map<string, VersionedResource>> {
  const out = new Map<string, Map<string, VersionedResource>>();
  for (const r of resources) {
    const typeUrl = r.resource.typeUrl;
    let byName = out.get(typeUrl);
    if (!byName) {
      byName = new Map();
      out.set(typeUrl, byName);
    }
    if (byName.has(r.name)) throw new TypeError(`duplicate resource name "${r.name}" for type ${typeUrl}`);
    byName.set(r.name, r);
  }
  return out;
}
