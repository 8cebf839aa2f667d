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
// $CC may carry arguments (`ccache gcc`, `gcc -m64`).
const [cc = 'cc', ...ccArgs] = (process.env.CC ?? 'cc').trim().split(/\s+/);

function skip(why) {
  const line = `build-native: ${why}; the CA verifies CSRs through WebCrypto instead (slower, same results)`;
  if (required) {
    console.error(line);
    process.exit(1);
  }
  console.log(line);
  process.exit(0);
}

/** Loads the addon in a child process (a damaged file can crash the process that loads it). */
function loads(file) {
  const code = `const m = { exports: {} }; process.dlopen(m, ${JSON.stringify(file)}); process.exit(typeof m.exports.verify === 'function' && typeof m.exports.checkPoint === 'function' ? 0 : 1)`;
  return spawnSync(process.execPath, ['-e', code], { stdio: 'ignore' }).status === 0;
}

const newer = (file, than) => fs.statSync(file).mtimeMs >= fs.statSync(than).mtimeMs;
if (fs.existsSync(out) && newer(out, source) && newer(out, fileURLToPath(import.meta.url)) && loads(out)) process.exit(0);
for (const header of ['node_api.h', 'openssl/ec.h']) {
  if (!fs.existsSync(path.join(include, header))) skip(`no ${header} under ${include}`);
}
const probe = spawnSync(cc, [...ccArgs, '--version'], { stdio: 'ignore' });
if (probe.error || probe.status !== 0) skip(`no C compiler (${cc})`);
fs.mkdirSync(path.dirname(out), { recursive: true });
const tmp = `${out}.${process.pid}.tmp`;
// The OpenSSL and N-API symbols come from the node executable at load time: bind them all then
// (`-z now`), so a Node without them fails `require` (caught: WebCrypto is used) instead of
// exiting at the first call. macOS needs them left undefined explicitly.
const link = process.platform === 'darwin' ? ['-undefined', 'dynamic_lookup'] : ['-Wl,-z,now'];
const args = [...ccArgs, '-O2', '-fPIC', '-shared', '-Wall', '-Wextra', '-fvisibility=hidden', `-I${include}`, ...link, '-o', tmp, source];
const r = spawnSync(cc, args, { stdio: 'inherit' });
if (r.status !== 0 || !loads(tmp)) {
  fs.rmSync(tmp, { force: true });
  skip(r.status !== 0 ? `${cc} failed (exit ${r.status ?? r.signal})` : 'the built addon does not load');
}
fs.renameSync(tmp, out);
console.log(`build-native: built ${path.relative(root, out)}`);
