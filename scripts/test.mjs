#!/usr/bin/env node
// Collects every *.test.ts under src/, agents/ and test/ and runs them with Node's test runner
// (Node 20's runner does not expand globs). Extra arguments are passed through; a path argument
// limits the run to the test files under it.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const args = process.argv.slice(2);
const filters = args.filter((a) => !a.startsWith('-'));
const passthrough = args.filter((a) => a.startsWith('-'));

function walk(dir, out) {
  if (!fs.existsSync(dir)) return out;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(p, out);
    else if (entry.name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

let files = ['src', 'agents', 'test'].flatMap((d) => walk(d, [])).sort();
if (filters.length) files = files.filter((f) => filters.some((flt) => f.startsWith(flt) || f.includes(flt)));
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
// Two test files at a time (2 cores); end-to-end files use distinct lab subnets so they can overlap.
const res = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', ...passthrough, ...files],
  { stdio: 'inherit' },
);
process.exit(res.status ?? 1);
