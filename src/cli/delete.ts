/** `skiff delete <kind> <name> -n <ns>`: deletes one API-written resource through the API. */
import type { Command } from 'commander';
import { resolveKind } from '../api/kinds.js';
import { ApiClient, addClientOptions, resolveClientOptions, type ClientFlags } from './api-client.js';

interface DeleteFlags extends ClientFlags {
  namespace: string;
  resourceVersion?: string;
}

/** Adds `delete` to `program`. */
export function registerDelete(program: Command): void {
  addClientOptions(
    program
      .command('delete')
      .description('delete a resource through the API')
      .argument('<kind>', 'kind, plural or short name (workloadentries, we, se, ...)')
      .argument('<name>', 'the resource name')
      .option('-n, --namespace <ns>', 'its namespace', 'default')
      .option('--resource-version <version>', 'delete only if it still has this resourceVersion'),
  ).action(async (kindArg: string, name: string, flags: DeleteFlags) => {
    const kind = resolveKind(kindArg);
    if (!kind) throw new Error(`unknown kind "${kindArg}"`);
    const client = new ApiClient(resolveClientOptions(flags));
    const q = flags.resourceVersion ? `?resourceVersion=${encodeURIComponent(flags.resourceVersion)}` : '';
    await client.request('DELETE', `/v1/namespaces/${encodeURIComponent(flags.namespace)}/${kind}/${encodeURIComponent(name)}${q}`);
    process.stdout.write(`${kind} ${flags.namespace}/${name} deleted\n`);
  });
}
