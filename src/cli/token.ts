/**
 * `skiff token create`: issues a bootstrap token on the control plane's host, signed with the
 * token key in the data dir (the same key and used-token store the running control plane uses).
 * Prints the token on stdout, or writes it to `--output` with mode 0600.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { TokenAuthority } from '../identity/tokens.js';
import { createLogger } from '../observability/logger.js';
import { parseDurationSeconds } from './duration.js';
import { defaultDataDir } from './options.js';

interface TokenCreateFlags {
  namespace: string;
  serviceAccount: string;
  ttl: string;
  singleUse?: boolean;
  workloadGroup?: string;
  dataDir?: string;
  trustDomain: string;
  output?: string;
}

/** Adds `token create` to `program`. */
export function registerToken(program: Command): void {
  const token = program.command('token').description('bootstrap tokens for node agents');
  token
    .command('create')
    .description('issue a bootstrap token bound to one workload identity')
    .requiredOption('--namespace <ns>', 'the workload namespace')
    .requiredOption('--service-account <sa>', 'the workload service account')
    .option('--ttl <duration>', 'token lifetime, e.g. 15m, 1h, 2d', '1h')
    .option('--single-use', 'the CA accepts the token once')
    .option('--workload-group <ns/name>', 'bind the token to a WorkloadGroup')
    .option('--data-dir <dir>', 'the control plane data dir (default ./.skiff)')
    .option('--trust-domain <td>', 'SPIFFE trust domain', 'cluster.local')
    .option('--output <file>', 'write the token to this file (mode 0600) instead of stdout')
    .action(async (flags: TokenCreateFlags) => {
      const ttlSeconds = parseDurationSeconds(flags.ttl, '--ttl');
      const dataDir = path.resolve(flags.dataDir ?? defaultDataDir());
      // Only the control plane creates the signing key: a token signed by a fresh key made here (a
      // wrong --data-dir, or the wrong working directory) would be refused by the CA anyway.
      if (!fs.existsSync(path.join(dataDir, 'token-signing-key.jwk'))) {
        throw new Error(`no control plane data dir at ${dataDir} (token-signing-key.jwk is missing): run this on the control plane's host with --data-dir set to its data dir (skiff serve creates it on first start)`);
      }
      const logger = createLogger({ fd: 2, level: 'warn' });
      const authority = await TokenAuthority.open({ dataDir, trustDomain: flags.trustDomain, logger });
      const issued = await authority.create({
        namespace: flags.namespace,
        serviceAccount: flags.serviceAccount,
        ttlSeconds,
        singleUse: flags.singleUse ?? false,
        group: flags.workloadGroup,
      });
      if (flags.output) {
        fs.writeFileSync(flags.output, issued.token + '\n', { mode: 0o600 });
        fs.chmodSync(flags.output, 0o600);
        process.stderr.write(`token for ${issued.spiffeId} (jti ${issued.jti}, expires ${issued.expiresAt.toISOString()}) written to ${flags.output}\n`);
      } else {
        process.stdout.write(issued.token + '\n');
      }
    });
}
