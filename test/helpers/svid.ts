/** Reads a node agent's persisted SVID (`<stateDir>/svid.pem`: private key + chain, agents/svid.ts). */
import fs from 'node:fs';
import path from 'node:path';
import { SVID_FILE } from '../../agents/svid.js';

/** The agent's certificate chain (leaf first) and private key, as PEM strings. */
export function readSvid(stateDir: string): { cert: string; key: string } {
  const text = fs.readFileSync(path.join(stateDir, SVID_FILE), 'utf8');
  const blocks = text.match(/-----BEGIN [^-]+-----[\s\S]*?-----END [^-]+-----\n?/g) ?? [];
  const key = blocks.filter((b) => /PRIVATE KEY/.test(b)).join('');
  const cert = blocks.filter((b) => /CERTIFICATE/.test(b)).join('');
  return { cert, key };
}
