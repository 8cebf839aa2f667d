/**
 * Start-up memory of the agent process (issue 9, agent RSS).
 *
 * Starting the agent allocates a burst of short-lived objects: the YAML/zod config parse, the
 * Envoy bootstrap's protobuf descriptor set (`bootstrapProtoRoot()` in src/xds/protos/loader.ts,
 * loaded once to validate and write the bootstrap, then dropped), the CSR and the first TLS
 * handshakes. V8 collects them with a full garbage collection only once its memory reducer sees
 * the process idle (some seconds later) or the old generation reaches its first limit; until then
 * the heap pages holding them stay resident. Once the agent is up it allocates little, so one full
 * collection at that point frees those pages right away and the process runs at its steady-state
 * size from then on.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

/**
 * Runs one full (mark-compact) garbage collection of this process's V8 heap. Node.js exposes the
 * collector only with `--expose-gc`; the flag is set at run time (`v8.setFlagsFromString`, which
 * affects contexts created afterwards) and `gc` is taken from a fresh context. Synchronous; takes
 * a few milliseconds for the agent's heap (~10 MB). Never throws: a failure only means the
 * garbage is collected later by V8 itself.
 */
export function collectStartupGarbage(): void {
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as unknown;
    if (typeof gc === 'function') (gc as () => void)();
  } catch {
    /* not fatal: V8 collects on its own schedule */
  }
}
