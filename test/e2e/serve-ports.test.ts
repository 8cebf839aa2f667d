/**
 * `skiff serve` with a port already in use stops with one line naming the flag and the address,
 * and exit code 1 (the gRPC and monitoring ports printed grpc-js's or Node's raw text; grpc-js
 * still logs its own line first).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ProcessGroup } from '../helpers/processes.js';
import { REPO, SKIFF } from '../helpers/skiff.js';

void describe('skiff serve: a port in use', () => {
  const group = new ProcessGroup();
  let tmp: string;
  let taken: net.Server;
  let port: number;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-ports-'));
    taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    port = (taken.address() as net.AddressInfo).port;
  });
  after(async () => {
    await group.stopAll();
    await new Promise<void>((resolve) => taken.close(() => resolve()));
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  for (const [flag, what] of [
    ['--grpc-port', 'gRPC (xDS and CA, --grpc-port)'],
    ['--monitoring-port', 'monitoring (--monitoring-port)'],
    ['--api-port', 'API (--api-port)'],
  ] as const) {
    void it(`${flag} in use: exit 1 with "${what}: cannot listen on 127.0.0.1:<port>"`, async () => {
      const ports: Record<string, string> = { '--grpc-port': '0', '--monitoring-port': '0', '--api-port': '0', [flag]: String(port) };
      const args = ['serve', '--config-dir', path.join(REPO, 'examples', 'basic'), '--data-dir', path.join(tmp, flag.slice(2)), '--listen-address', '127.0.0.1', ...Object.entries(ports).flat()];
      const proc = group.add(flag, spawn(SKIFF[0]!, [...SKIFF.slice(1), ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
      assert.equal(await proc.exited, 1);
      assert.ok(proc.output().includes(`${what}: cannot listen on 127.0.0.1:${port}`), proc.output().slice(-2000));
    });
  }
});
