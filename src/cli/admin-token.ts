/**
 * `skiff admin-token create|list|revoke`: admin tokens of the HTTP API, managed on the control
 * plane's host directly in its store (`<dataDir>/skiff.db`); a running control plane sees them at
 * once. `create` prints the token once (or writes it to `--output`, mode 0600).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { createAdminToken } from '../api/admin-tokens.js';
import { TOKEN_KEY_FILE } from '../identity/tokens.js';
import { createLogger } from '../observability/logger.js';
import { openStore, type Store } from '../store/index.js';
import { table } from './get.js';
import { defaultDataDir } from './options.js';

/** How host-side commands appear in the audit log. */
export function hostActor(): string {
  let user = 'unknown';
  try {
    user = os.userInfo().username;
  } catch {
    // no passwd entry
  }
  return `host:${user}`;
}

/**
 * Opens the store of an initialised control plane data dir; throws a clear error for a directory
 * `skiff serve` never used (so a typo in `--data-dir` does not create a stray store).
 */
export function openHostStore(dataDirFlag: string | undefined): { store: Store; dataDir: string } {
  const dataDir = path.resolve(dataDirFlag ?? defaultDataDir());
  if (!fs.existsSync(path.join(dataDir, TOKEN_KEY_FILE))) {
    throw new Error(
      `no control plane data dir at ${dataDir} (${TOKEN_KEY_FILE} is missing): run this on the control plane's host with --data-dir set to its data dir (skiff serve creates it on first start)`,
    );
  }
  return { store: openStore({ dataDir, logger: createLogger({ fd: 2, level: 'warn' }) }), dataDir };
}

interface CreateFlags {
  namespaces?: string;
  description?: string;
  dataDir?: string;
  output?: string;
}

/** Adds `admin-token create|list|revoke` to `program`. */
export function registerAdminToken(program: Command): void {
  const cmd = program.command('admin-token').description('admin tokens of the HTTP API (on the control plane host)');
  cmd
    .command('create')
    .description('create an admin token; it is printed once')
    .option('--namespaces <list>', 'restrict the token to these namespaces (comma-separated)')
    .option('--description <text>', 'what the token is for')
    .option('--data-dir <dir>', 'the control plane data dir (default ./.skiff)')
    .option('--output <file>', 'write the token to this file (mode 0600) instead of stdout')
    .action(async (flags: CreateFlags) => {
      const namespaces = flags.namespaces?.split(',').map((s) => s.trim()).filter((s) => s !== '');
      if (flags.namespaces !== undefined && (namespaces?.length ?? 0) === 0) throw new Error('--namespaces: expected a comma-separated list of namespaces');
      const { store } = openHostStore(flags.dataDir);
      try {
        const { token, record } = await createAdminToken(
          store.adminTokens,
          { ...(namespaces ? { namespaces } : {}), ...(flags.description ? { description: flags.description } : {}) },
          hostActor(),
        );
        const scope = record.namespaces ? `namespaces ${record.namespaces.join(', ')}` : 'all namespaces';
        if (flags.output) {
          fs.writeFileSync(flags.output, token + '\n', { mode: 0o600 });
          fs.chmodSync(flags.output, 0o600);
          process.stderr.write(`admin token ${record.id} (${scope}) written to ${flags.output}\n`);
        } else {
          process.stdout.write(token + '\n');
          process.stderr.write(`admin token ${record.id} (${scope})\n`);
        }
      } finally {
        await store.close();
      }
    });
  cmd
    .command('list')
    .description('list admin tokens (never their secrets)')
    .option('--data-dir <dir>', 'the control plane data dir (default ./.skiff)')
    .action(async (flags: { dataDir?: string }) => {
      const { store } = openHostStore(flags.dataDir);
      try {
        const rows = (await store.adminTokens.list()).map((t) => [
          t.id,
          t.namespaces ? t.namespaces.join(',') : '*',
          t.revokedAt ? `revoked ${t.revokedAt.toISOString()}` : 'active',
          t.createdAt.toISOString(),
          t.createdBy,
          t.description ?? '',
        ]);
        process.stdout.write(table(['ID', 'NAMESPACES', 'STATUS', 'CREATED', 'CREATED BY', 'DESCRIPTION'], rows));
      } finally {
        await store.close();
      }
    });
  cmd
    .command('revoke')
    .description('revoke an admin token by id; the API refuses it at once')
    .argument('<id>', 'the token id (skiff admin-token list)')
    .option('--data-dir <dir>', 'the control plane data dir (default ./.skiff)')
    .action(async (id: string, flags: { dataDir?: string }) => {
      const { store } = openHostStore(flags.dataDir);
      try {
        if (!(await store.adminTokens.revoke(id, hostActor()))) throw new Error(`no active admin token with id ${id}`);
        process.stdout.write(`admin token ${id} revoked\n`);
      } finally {
        await store.close();
      }
    });
}
