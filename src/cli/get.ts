/**
 * `skiff get <kind> [name]`: reads resources through the API. `<kind>` is a kind, its plural or
 * short name (`workloadentries`, `we`...), or one of the merged registry views `workloads` and
 * `services` (every source, with source and health). Without `-n` every namespace the token may
 * see is listed. Output: a table (default), `-o yaml` (documents `skiff apply` accepts back) or
 * `-o json`.
 */
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { API_KINDS, pluralOf, resolveKind } from '../api/kinds.js';
import type { MeshResource } from '../resources/types.js';
import { ApiClient, addClientOptions, resolveClientOptions, type ClientFlags } from './api-client.js';

interface GetFlags extends ClientFlags {
  namespace?: string;
  selector?: string;
  output?: string;
}

interface ResourceList {
  kind: 'List';
  metadata: { resourceVersion: string; continue?: string };
  items: MeshResource[];
}

interface WorkloadView {
  namespace: string;
  name: string;
  address?: string;
  serviceAccount: string;
  source: string;
  health: string;
}

interface ServiceView {
  namespace: string;
  name: string;
  hosts: string[];
  source: string;
  endpoints: { address: string; health: string }[];
}

/** Renders rows as a left-aligned table with a header. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('   ');
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

function age(timestamp: string | undefined): string {
  if (!timestamp) return '';
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(timestamp)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

function print(output: string | undefined, value: unknown, docs: unknown[], render: () => string): void {
  if (output === 'json') process.stdout.write(JSON.stringify(value, null, 2) + '\n');
  else if (output === 'yaml') process.stdout.write(docs.map((d) => stringify(d)).join('---\n'));
  else process.stdout.write(render());
}

/** Adds `get` to `program`. */
export function registerGet(program: Command): void {
  addClientOptions(
    program
      .command('get')
      .description('read resources (or the merged views "workloads" and "services") through the API')
      .argument('<kind>', 'kind, plural or short name (workloadentries, we, se, ...), or workloads / services')
      .argument('[name]', 'one object (needs its namespace: -n, default "default")')
      .option('-n, --namespace <ns>', 'only this namespace')
      .option('-l, --selector <selector>', 'label selector, e.g. app=web,tier!=db')
      .option('-o, --output <format>', 'table (default), yaml or json'),
  ).action(async (kindArg: string, name: string | undefined, flags: GetFlags) => {
    if (flags.output !== undefined && !['yaml', 'json', 'table'].includes(flags.output)) throw new Error(`-o: expected yaml, json or table, got "${flags.output}"`);
    const client = new ApiClient(resolveClientOptions(flags));
    const nsQuery = flags.namespace ? `?namespace=${encodeURIComponent(flags.namespace)}` : '';

    if (kindArg === 'workloads' || kindArg === 'services') {
      if (name !== undefined) throw new Error(`skiff get ${kindArg} lists; it takes no name`);
      const res = await client.request<{ items: (WorkloadView & ServiceView)[] }>('GET', `/v1/${kindArg}${nsQuery}`);
      print(flags.output, res.body, res.body.items, () =>
        kindArg === 'workloads'
          ? table(
              ['NAMESPACE', 'NAME', 'ADDRESS', 'SERVICE ACCOUNT', 'SOURCE', 'HEALTH'],
              res.body.items.map((w) => [w.namespace, w.name, w.address ?? '', w.serviceAccount, w.source, w.health]),
            )
          : table(
              ['NAMESPACE', 'NAME', 'HOSTS', 'ENDPOINTS', 'SOURCE'],
              res.body.items.map((s) => [s.namespace, s.name, s.hosts.join(','), `${s.endpoints.filter((e) => e.health === 'healthy').length}/${s.endpoints.length} healthy`, s.source]),
            ),
      );
      return;
    }

    const kind = resolveKind(kindArg);
    if (!kind) throw new Error(`unknown kind "${kindArg}" (kinds: ${API_KINDS.map(pluralOf).join(', ')}; views: workloads, services)`);
    if (name !== undefined) {
      const ns = flags.namespace ?? 'default';
      const res = await client.request<MeshResource>('GET', `/v1/namespaces/${encodeURIComponent(ns)}/${kind}/${encodeURIComponent(name)}`);
      print(flags.output ?? 'yaml', res.body, [res.body], () =>
        table(['NAMESPACE', 'NAME', 'RESOURCE VERSION', 'AGE'], [[res.body.metadata.namespace, res.body.metadata.name, res.body.metadata.resourceVersion ?? '', age(res.body.metadata.creationTimestamp)]]),
      );
      return;
    }
    const items: MeshResource[] = [];
    let cont: string | undefined;
    let resourceVersion = '';
    do {
      const q = new URLSearchParams({ limit: '500' });
      if (flags.namespace) q.set('namespace', flags.namespace);
      if (flags.selector) q.set('labelSelector', flags.selector);
      if (cont) q.set('continue', cont);
      const page = (await client.request<ResourceList>('GET', `/v1/${kind}?${q.toString()}`)).body;
      items.push(...page.items);
      resourceVersion ||= page.metadata.resourceVersion;
      cont = page.metadata.continue;
    } while (cont);
    print(flags.output, { kind: 'List', metadata: { resourceVersion }, items }, items, () =>
      items.length === 0
        ? `No ${kind} found.\n`
        : table(
            ['NAMESPACE', 'NAME', 'RESOURCE VERSION', 'AGE'],
            items.map((r) => [r.metadata.namespace, r.metadata.name, r.metadata.resourceVersion ?? '', age(r.metadata.creationTimestamp)]),
          ),
    );
  });
}
