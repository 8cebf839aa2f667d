#!/usr/bin/env node
// Builds the CA's optional native ECDSA verifier (src/ca/native/ecdsa-verify.c, see its header)
// into dist/native/skiff_ecdsa.node with the C compiler ($CC, else cc), against the N-API and
// OpenSSL headers Node ships in <prefix>/include/node, and the OpenSSL symbols of Node itself.
// Without a compiler or those headers it says so in one line and exits 0: the CA then verifies
// CSRs through WebCrypto (same results, slower; src/ca/native.ts). Up-to-date output is kept.
// `--require` makes a missing compiler or a failed build an error (CI, where tests expect it).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const source = path.join(root, 'src/ca/native/ecdsa-verify.c');
const out = path.join(root, 'dist/native/skiff_ecdsa.node');
const required = process.argv.includes('--require');
const include = path.resolve(path.dirname(process.execPath), '..', 'include', 'node');
const cc = process.env.CC ?? 'cc';

function skip(why) {
  const line = `build-native: ${why}; the CA verifies CSRs through WebCrypto instead (slower, same results)`;
  if (required) {
    console.error(line);
    process.exit(1);
  }
  console.log(line);
  process.exit(0);
}

if (fs.existsSync(out) && fs.statSync(out).mtimeMs >= fs.statSync(source).mtimeMs && fs.statSync(out).mtimeMs >= fs.statSync(fileURLToPath(import.meta.url)).mtimeMs) process.exit(0);
for (const header of ['node_api.h', 'openssl/ec.h']) {
  if (!fs.existsSync(path.join(include, header))) skip(`no ${header} under ${include}`);
}
const probe = spawnSync(cc, ['--version'], { stdio: 'ignore' });
if (probe.error || probe.status !== 0) skip(`no C compiler (${cc})`);
fs.mkdirSync(path.dirname(out), { recursive: true });
const tmp = `${out}.${process.pid}.tmp`;
const args = ['-O2', '-fPIC', '-shared', '-Wall', '-Wextra', '-Werror', '-fvisibility=hidden', `-I${include}`, '-o', tmp, source];
const r = spawnSync(cc, args, { stdio: 'inherit' });
if (r.status !== 0) {
  fs.rmSync(tmp, { force: true });
  skip(`${cc} failed (exit ${r.status ?? r.signal})`);
}
fs.renameSync(tmp, out);
console.log(`build-native: built ${path.relative(root, out)}`);
