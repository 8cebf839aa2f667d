/**
 * One-time import of token state kept in files by earlier Skiff versions (`<dataDir>/token-state/
 * used/<jti>` and `revoked/<jti>`, JSON `{jti, exp}`) into the store, so an upgrade does not
 * forget a revocation or let a used single-use token be replayed. A `.imported` marker in
 * `token-state/` makes later calls a no-op; the files themselves are left in place.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { TOKEN_STATE_DIR } from '../identity/tokens.js';
import type { Logger } from '../observability/logger.js';
import type { TokenStore } from './types.js';

const MARKER = '.imported';

async function readRecords(dir: string, logger: Logger): Promise<{ jti: string; exp: number | null }[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return [];
  }
  const out: { jti: string; exp: number | null }[] = [];
  for (const name of names) {
    if (name.startsWith('.')) continue;
    try {
      const rec = JSON.parse(await fs.readFile(path.join(dir, name), 'utf8')) as { jti?: unknown; exp?: unknown };
      out.push({ jti: typeof rec.jti === 'string' ? rec.jti : name, exp: typeof rec.exp === 'number' ? rec.exp : null });
    } catch {
      logger.warn({ file: path.join(dir, name) }, 'unreadable token state file not imported');
    }
  }
  return out;
}

/**
 * Imports file token state under `dataDir` into `tokens` once. Returns how many records were
 * imported (0 when there are none or they were imported before).
 */
export async function importFileTokenState(dataDir: string, tokens: TokenStore, logger: Logger): Promise<number> {
  const stateDir = path.join(dataDir, TOKEN_STATE_DIR);
  try {
    await fs.access(stateDir);
  } catch {
    return 0;
  }
  try {
    await fs.access(path.join(stateDir, MARKER));
    return 0;
  } catch {
    // not imported yet
  }
  let n = 0;
  for (const rec of await readRecords(path.join(stateDir, 'revoked'), logger)) {
    await tokens.revoke(rec.jti, rec.exp === null ? undefined : new Date(rec.exp * 1000), 'import:token-state');
    n++;
  }
  for (const rec of await readRecords(path.join(stateDir, 'used'), logger)) {
    await tokens.markUsed(rec.jti, new Date((rec.exp ?? Math.floor(Date.now() / 1000) + 30 * 86400) * 1000), 'import:token-state');
    n++;
  }
  await fs.writeFile(path.join(stateDir, MARKER), `imported into the store ${new Date().toISOString()}\n`, { mode: 0o600 });
  if (n > 0) logger.info({ records: n }, 'imported token state files into the store');
  return n;
}
