/**
 * `skiff token create|list|revoke`: bootstrap tokens for node agents.
 *
 * Two ways, one token store:
 * - on the control plane's host (default): signed with the token key in the data dir and recorded
 *   in its store (`<dataDir>/skiff.db`), the same store the running control plane's CA and API
 *   use, so a token made here is listed by the API and a revocation here is refused by the CA at
 *   once (and the control plane closes the xDS streams it fed within a second);
 * - through the API with `--server` (or `SKIFF_SERVER`) and an admin token.
 *
 * `create` prints the token on stdout, or writes it to `--output` with mode 0600.
 */
import fs from 'node:fs';
import type { Command } from 'commander';
import { tokenInfo } from '../api/tokens.js';
import { TokenAuthority } from '../identity/tokens.js';
import { createLogger } from '../observability/logger.js';
import { hostActor, openHostStore } from './admin-token.js';
import { ApiClient, addClientOptions, resolveClientOptions, wantsApi, type ClientFlags } from './api-client.js';
import { parseDurationSeconds } from './duration.js';
import { table } from './get.js';

interface TokenCreateFlags extends ClientFlags {
  namespace: string;
  serviceAccount: string;
  ttl: string;
  singleUse?: boolean;
  workloadGroup?: string;
  dataDir?: string;
  trustDomain: string;
  output?: string;
}

interface HostFlags extends ClientFlags {
  dataDir?: string;
}

/** What the list and revoke commands print per token. */
type TokenInfo = ReturnType<typeof tokenInfo>;

function writeToken(token: string, desc: { spiffeId: string; jti: string; expiresAt: string }, output: string | undefined): void {
  if (output) {
    fs.writeFileSync(output, token + '\n', { mode: 0o600 });
    fs.chmodSync(output, 0o600);
    process.stderr.write(`token for ${desc.spiffeId} (jti ${desc.jti}, expires ${desc.expiresAt}) written to ${output}\n`);
  } else {
    process.stdout.write(token + '\n');
  }
}

function printTokens(items: TokenInfo[]): void {
  process.stdout.write(
    table(
      ['JTI', 'IDENTITY', 'STATUS', 'SINGLE USE', 'EXPIRES', 'CREATED BY'],
      items.map((t) => [t.jti, t.spiffeId, t.status, t.singleUse ? 'yes' : 'no', t.expiresAt, t.createdBy]),
    ),
  );
}

/** Adds `token create|list|revoke` to `program`. */
export function registerToken(program: Command): void {
  const token = program.command('token').description('bootstrap tokens for node agents');
  addClientOptions(
    token
      .command('create')
      .description('issue a bootstrap token bound to one workload identity (on the host, or through the API with --server)')
      .requiredOption('--namespace <ns>', 'the workload namespace')
      .requiredOption('--service-account <sa>', 'the workload service account')
      .option('--ttl <duration>', 'token lifetime, e.g. 15m, 1h, 2d', '1h')
      .option('--single-use', 'the CA accepts the token once')
      .option('--workload-group <ns/name>', 'bind the token to a WorkloadGroup')
      .option('--data-dir <dir>', 'the control plane data dir (default ./.skiff)')
      .option('--trust-domain <td>', 'SPIFFE trust domain', 'cluster.local')
      .option('--output <file>', 'write the token to this file (mode 0600) instead of stdout'),
  ).action(async (flags: TokenCreateFlags) => {
    const ttlSeconds = parseDurationSeconds(flags.ttl, '--ttl');
    if (wantsApi(flags)) {
      const client = new ApiClient(resolveClientOptions(flags));
      const res = await client.request<{ token: string; jti: string; spiffeId: string; expiresAt: string }>('POST', '/v1/tokens', {
        contentType: 'application/json',
        text: JSON.stringify({
          namespace: flags.namespace,
          serviceAccount: flags.serviceAccount,
          ttlSeconds,
          singleUse: flags.singleUse === true,
          ...(flags.workloadGroup !== undefined ? { workloadGroup: flags.workloadGroup } : {}),
        }),
      });
      writeToken(res.body.token, res.body, flags.output);
      return;
    }
    // Only the control plane creates the signing key and the store: a token signed by a fresh key
    // made here (a wrong --data-dir, or the wrong working directory) would be refused by the CA.
    const { store, dataDir } = openHostStore(flags.dataDir);
    try {
      const logger = createLogger({ fd: 2, level: 'warn' });
      const authority = await TokenAuthority.open({ dataDir, trustDomain: flags.trustDomain, logger, state: store.tokens });
      const issued = await authority.create({
        namespace: flags.namespace,
        serviceAccount: flags.serviceAccount,
        ttlSeconds,
        singleUse: flags.singleUse ?? false,
        group: flags.workloadGroup,
        createdBy: hostActor(),
      });
      writeToken(issued.token, { spiffeId: issued.spiffeId, jti: issued.jti, expiresAt: issued.expiresAt.toISOString() }, flags.output);
    } finally {
      await store.close();
    }
  });

  addClientOptions(
    token
      .command('list')
      .description('list issued bootstrap tokens (never the tokens themselves)')
      .option('-n, --namespace <ns>', 'only tokens for this namespace')
      .option('-o, --output <format>', 'table (default) or json')
      .option('--data-dir <dir>', 'the control plane data dir, on the host (default ./.skiff)'),
  ).action(async (flags: HostFlags & { namespace?: string; output?: string }) => {
    let items: TokenInfo[];
    if (wantsApi(flags)) {
      const client = new ApiClient(resolveClientOptions(flags));
      items = (await client.request<{ items: TokenInfo[] }>('GET', `/v1/tokens${flags.namespace ? `?namespace=${encodeURIComponent(flags.namespace)}` : ''}`)).body.items;
    } else {
      const { store } = openHostStore(flags.dataDir);
      try {
        const now = Date.now();
        items = (await store.tokens.list(flags.namespace ? { namespaces: [flags.namespace] } : {})).map((r) => tokenInfo(r, now));
      } finally {
        await store.close();
      }
    }
    if (flags.output === 'json') process.stdout.write(JSON.stringify({ items }, null, 2) + '\n');
    else printTokens(items);
  });

  addClientOptions(
    token
      .command('revoke')
      .description('revoke a bootstrap token: the CA refuses it and the certificates issued with it, and their xDS streams are closed')
      .argument('<jti>', 'the token id (skiff token list); put -- before one that starts with -')
      .option('--data-dir <dir>', 'the control plane data dir, on the host (default ./.skiff)'),
  ).action(async (jti: string, flags: HostFlags) => {
    if (wantsApi(flags)) {
      const client = new ApiClient(resolveClientOptions(flags));
      await client.request('DELETE', `/v1/tokens/${encodeURIComponent(jti)}`);
    } else {
      const { store } = openHostStore(flags.dataDir);
      try {
        const record = await store.tokens.get(jti);
        if (!record) throw new Error(`no token with jti ${jti} was issued by this control plane`);
        await store.tokens.revoke(jti, record.expiresAt, hostActor());
      } finally {
        await store.close();
      }
    }
    process.stdout.write(`token ${jti} revoked\n`);
  });
}
