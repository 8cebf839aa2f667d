/**
 * Checks over a whole set of resources (after each one passed its schema): what only shows when
 * resources are seen together.
 *
 * - Errors: the same `Kind/namespace/name` defined twice (both locations are named).
 * - Warnings (Istio accepts these, but they are probably mistakes): a ServiceEntry whose
 *   workloadSelector selects no WorkloadEntry yet; a Sidecar egress host that names no known
 *   service; several Sidecars without workloadSelector in one namespace.
 * - Traffic kinds (`traffic-validate.ts`): errors for a VirtualService / HTTPRoute / GRPCRoute
 *   destination host, subset or port that no ServiceEntry / DestinationRule defines; a warning
 *   when a VirtualService and a Gateway API route target one host (the VirtualService wins).
 */
import { formatPath, type PathSegment, type ResourceLocator } from './issues.js';
import { matchesSelector, workloadLabels } from './selectors.js';
import { trafficSetIssues } from './traffic-validate.js';
import { resourceKey, type MeshResource, type ResourceIssue, type ServiceEntry, type Sidecar, type WorkloadEntry } from './types.js';

/** Result of {@link validateResourceSet}. */
export interface SetCheckResult {
  warnings: ResourceIssue[];
  errors: ResourceIssue[];
}

/** Where a resource was defined, for messages: `file:line`, or its key when it has no origin. */
function locationOf(r: MeshResource): string {
  const file = r.origin?.file;
  if (file === undefined) return `${r.origin?.source ?? 'unknown source'} ${resourceKey(r)}`;
  return r.origin?.line ? `${file}:${r.origin.line}` : file;
}

/**
 * True when a host pattern from a Sidecar egress entry and a ServiceEntry host can name the same
 * service: equal, `*`, or one a `*.` wildcard matching the other.
 */
export function hostsOverlap(a: string, b: string): boolean {
  if (a === b || a === '*' || b === '*') return true;
  const covers = (wild: string, h: string): boolean => wild.startsWith('*') && h.endsWith(wild.slice(1));
  return covers(a, b) || covers(b, a);
}

/**
 * WorkloadEntries by namespace, and by the value of each label some selector starts with, so the
 * "selects no WorkloadEntry" check looks only at workloads carrying the selector's first label
 * instead of at every workload (10,000 WorkloadEntries × 1,000 ServiceEntries would be 10 million
 * selector matches).
 */
interface WorkloadIndex {
  /** Namespace → every WorkloadEntry in it. */
  all: Map<string, WorkloadEntry[]>;
  /** Namespace → label name (one of the selectors' first labels) → label value → WorkloadEntries. */
  byLabel: Map<string, Map<string, Map<string, WorkloadEntry[]>>>;
}

/** The value of label `key` in {@link workloadLabels}`(we)` (metadata over spec), without building the merged labels. */
function workloadLabel(we: WorkloadEntry, key: string): string | undefined {
  const meta = we.metadata.labels;
  if (meta !== undefined && Object.hasOwn(meta, key)) return meta[key];
  const spec = we.spec.labels;
  return spec !== undefined && Object.hasOwn(spec, key) ? spec[key] : undefined;
}

function indexWorkloads(workloads: readonly WorkloadEntry[], keys: ReadonlySet<string>): WorkloadIndex {
  const index: WorkloadIndex = { all: new Map(), byLabel: new Map() };
  for (const we of workloads) {
    const ns = we.metadata.namespace;
    let all = index.all.get(ns);
    if (all === undefined) index.all.set(ns, (all = []));
    all.push(we);
    let byName = index.byLabel.get(ns);
    if (byName === undefined) index.byLabel.set(ns, (byName = new Map<string, Map<string, WorkloadEntry[]>>()));
    for (const k of keys) {
      const v = workloadLabel(we, k);
      if (v === undefined) continue;
      let byValue = byName.get(k);
      if (byValue === undefined) byName.set(k, (byValue = new Map<string, WorkloadEntry[]>()));
      let list = byValue.get(v);
      if (list === undefined) byValue.set(v, (list = []));
      list.push(we);
    }
  }
  return index;
}

/** The first label of a selector (the one {@link indexWorkloads} indexes), if it has any. */
function firstLabel(selector: Readonly<Record<string, string>> | undefined): [string, string] | undefined {
  if (selector === undefined) return undefined;
  for (const k in selector) if (Object.hasOwn(selector, k)) return [k, selector[k]!];
  return undefined;
}

/** True when some WorkloadEntry of `ns` matches `selector` (`matchesSelector`; an empty selector matches any). */
function selectsAnyWorkload(index: WorkloadIndex, ns: string, selector: Readonly<Record<string, string>> | undefined): boolean {
  const first = firstLabel(selector);
  // Only workloads carrying the selector's first label can match it; those are checked in full.
  const candidates = first === undefined ? index.all.get(ns) : index.byLabel.get(ns)?.get(first[0])?.get(first[1]);
  return (candidates ?? []).some((we) => matchesSelector(selector, workloadLabels(we)));
}

/**
 * ServiceEntries by exact host, plus those with a wildcard host (`*`, `*.example.com`), in set
 * order: for a Sidecar egress host without a leading `*`, only these can overlap it
 * ({@link hostsOverlap}).
 */
interface ServiceHostIndex {
  exact: Map<string, ServiceEntry[]>;
  wildcard: ServiceEntry[];
  all: readonly ServiceEntry[];
}

function indexServiceHosts(services: readonly ServiceEntry[]): ServiceHostIndex {
  const index: ServiceHostIndex = { exact: new Map(), wildcard: [], all: services };
  for (const se of services) {
    for (const h of new Set(se.spec.hosts)) {
      let list = index.exact.get(h);
      if (list === undefined) index.exact.set(h, (list = []));
      list.push(se);
    }
    if (se.spec.hosts.some((h) => h.startsWith('*'))) index.wildcard.push(se);
  }
  return index;
}

/** The ServiceEntries that may have a host overlapping egress host `name` (a superset; the caller checks each). */
function egressCandidates(index: ServiceHostIndex, name: string): readonly ServiceEntry[] {
  if (name.startsWith('*')) return index.all;
  return [...(index.exact.get(name) ?? []), ...index.wildcard];
}

/** Options for {@link validateResourceSet}. */
export interface SetCheckOptions {
  /**
   * Check the references of the traffic kinds (destination hosts, subsets, ports) as errors. They
   * need the whole mesh: a set that is only part of it (an API request body) cannot be checked
   * alone. Default: on, except for a set made only of API resources (`origin.source: api`).
   */
  references?: boolean;
}

/**
 * Runs the set-level checks. `locate` (from `parseResources`/`loadDirectory`) puts the exact line
 * of the offending field on each issue; without it the resource's document line is used.
 */
export function validateResourceSet(resources: readonly MeshResource[], locate?: ResourceLocator, options: SetCheckOptions = {}): SetCheckResult {
  const warnings: ResourceIssue[] = [];
  const errors: ResourceIssue[] = [];
  const issue = (list: ResourceIssue[], r: MeshResource, path: PathSegment[], message: string): void => {
    list.push({
      file: r.origin?.file ?? r.origin?.source ?? resourceKey(r),
      line: locate?.(r, path) ?? r.origin?.line ?? 0,
      path: formatPath(path),
      message,
    });
  };

  const first = new Map<string, MeshResource>();
  for (const r of resources) {
    const key = resourceKey(r);
    const earlier = first.get(key);
    if (earlier) issue(errors, r, ['metadata', 'name'], `duplicate ${r.kind} ${r.metadata.namespace}/${r.metadata.name}: also defined at ${locationOf(earlier)}`);
    else first.set(key, r);
  }

  const workloads = resources.filter((r): r is WorkloadEntry => r.kind === 'WorkloadEntry');
  const services = resources.filter((r): r is ServiceEntry => r.kind === 'ServiceEntry');
  const sidecars = resources.filter((r): r is Sidecar => r.kind === 'Sidecar');

  const selectorKeys = new Set<string>();
  for (const se of services) {
    const first = firstLabel(se.spec.workloadSelector?.labels);
    if (first !== undefined) selectorKeys.add(first[0]);
  }
  let workloadIndex: WorkloadIndex | undefined;
  for (const se of services) {
    const selector = se.spec.workloadSelector;
    if (selector === undefined) continue;
    const ns = se.metadata.namespace;
    workloadIndex ??= indexWorkloads(workloads, selectorKeys);
    if (!selectsAnyWorkload(workloadIndex, ns, selector.labels)) {
      issue(warnings, se, ['spec', 'workloadSelector'], `selects no WorkloadEntry in namespace ${ns} yet: the service has no endpoints`);
    }
  }

  const serviceIndex = indexServiceHosts(sidecars.length > 0 ? services : []); // only Sidecars look hosts up
  const namespaceWide = new Map<string, Sidecar>();
  for (const sc of sidecars) {
    const ns = sc.metadata.namespace;
    if (sc.spec.workloadSelector === undefined) {
      const other = namespaceWide.get(ns);
      if (other) issue(warnings, sc, ['metadata', 'name'], `namespace ${ns} already has a Sidecar without workloadSelector (${other.metadata.name}): which one applies is undefined`);
      else namespaceWide.set(ns, sc);
    }
    (sc.spec.egress ?? []).forEach((listener, i) => {
      listener.hosts.forEach((h, j) => {
        const slash = h.indexOf('/');
        const hostNs = h.slice(0, slash);
        const name = h.slice(slash + 1);
        if (hostNs.startsWith('~') || (hostNs === '*' && name === '*')) return;
        const wantNs = hostNs === '.' ? ns : hostNs;
        const known = egressCandidates(serviceIndex, name).some(
          (se) => (wantNs === '*' || se.metadata.namespace === wantNs) && se.spec.hosts.some((sh) => hostsOverlap(name, sh)),
        );
        if (!known) issue(warnings, sc, ['spec', 'egress', i, 'hosts', j], `egress host "${h}" names no known service`);
      });
    });
  }

  const references = options.references ?? !(resources.length > 0 && resources.every((r) => r.origin?.source === 'api'));
  const traffic = trafficSetIssues(resources, { references });
  for (const e of traffic.errors) issue(errors, e.resource, e.path, e.message);
  for (const w of traffic.warnings) issue(warnings, w.resource, w.path, w.message);
  return { warnings, errors };
}
