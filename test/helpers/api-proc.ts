/**
 * `skiff serve` as a child process with its HTTP API on an ephemeral port: where the API listens
 * (from the "control plane listening" log line) and the admin token the first start wrote to
 * `<dataDir>/admin-token`.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ProcessGroup } from './processes.js';
import { startControlPlaneProc, type ControlPlaneProc } from './skiff.js';

/** A control plane process and its API. */
export interface ControlPlaneWithApi {
  cp: ControlPlaneProc;
  apiUrl: string;
  adminToken: string;
}

/** Starts `skiff serve --api-port 0` on 127.0.0.1 and waits until it listens. */
export async function startControlPlaneWithApi(group: ProcessGroup, opts: { configDir: string; dataDir: string; extraArgs?: string[] }): Promise<ControlPlaneWithApi> {
  const cp = await startControlPlaneProc(group, { configDir: opts.configDir, dataDir: opts.dataDir, address: '127.0.0.1', extraArgs: ['--api-port', '0', ...(opts.extraArgs ?? [])] });
  const m = await cp.proc.waitFor(/"apiPort":(\d+)/, 10_000);
  const adminToken = fs.readFileSync(path.join(opts.dataDir, 'admin-token'), 'utf8').trim();
  return { cp, apiUrl: `http://127.0.0.1:${m[1]}`, adminToken };
}
