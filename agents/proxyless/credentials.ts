/**
 * The credential files of a proxyless gRPC application: the agent's SVID chain, private key and
 * trust bundle, written where the bootstrap's `file_watcher` certificate provider reads them
 * (agents/proxyless/bootstrap.ts), and rewritten at every SVID renewal. Every file is written
 * atomically with mode 0600 (the key above all); the application runs as the agent's user or is
 * given the directory by the operator.
 */
import path from 'node:path';
import type { Svid } from '../svid.js';
import { ensurePrivateDir, writeFileAtomic } from '../files.js';
import { PROXYLESS_FILES } from './bootstrap.js';

/**
 * Writes `svid` into `dir` (created mode 0700): the key first, then the chain, then the roots, so
 * a reader that sees the new chain finds the matching key already in place.
 */
export async function writeProxylessCredentials(dir: string, svid: Pick<Svid, 'certChainPem' | 'keyPem' | 'rootsPem'>): Promise<void> {
  await ensurePrivateDir(dir);
  await writeFileAtomic(path.join(dir, PROXYLESS_FILES.privateKey), svid.keyPem);
  await writeFileAtomic(path.join(dir, PROXYLESS_FILES.certificateChain), svid.certChainPem);
  await writeFileAtomic(path.join(dir, PROXYLESS_FILES.rootCert), svid.rootsPem);
}
