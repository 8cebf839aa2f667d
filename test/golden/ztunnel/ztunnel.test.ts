/**
 * Golden tests of the ztunnel translator: each `ztunnel/<case>.in.yaml` (mesh resources) must
 * produce exactly `<case>.out.addresses.yaml` (the `istio.workload.Address` resources with their
 * names and aliases, decoded from their encoded bytes, raw IP bytes shown as text),
 * `<case>.out.authorizations.yaml` (the `istio.security.Authorization` resources) and
 * `<case>.out.warnings.yaml`. Run with `UPDATE_GOLDEN=1` to rewrite the outputs after a reviewed
 * change.
 *
 * Optional header lines of a case (YAML flow syntax):
 *   # options: {trustDomain: example.org, clusterId: c1, network: net1, rootNamespace: mesh-root}
 *   # unhealthy: [ns/name, ...]        WorkloadEntries whose status says Healthy=False
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import YAML from 'yaml';
import { buildSnapshot } from '../../../src/registry/index.js';
import { formatIssue, parseResources } from '../../../src/resources/parse.js';
import { HEALTHY_CONDITION, type MeshResource } from '../../../src/resources/types.js';
import { ipText, translateZtunnel, type ZtunnelTranslateOptions, type ZtunnelTranslation } from '../../../src/translate/ztunnel/index.js';
import { decodeAny, TypeUrl } from '../../../src/xds/protos/loader.js';
import type { VersionedResource } from '../../../src/xds/types.js';

const UPDATE = process.env['UPDATE_GOLDEN'] === '1';
const CASES_DIR = path.dirname(fileURLToPath(import.meta.url));

function caseNames(): string[] {
  return fs
    .readdirSync(CASES_DIR)
    .filter((f) => f.endsWith('.in.yaml'))
    .map((f) => f.slice(0, -'.in.yaml'.length))
    .sort();
}

function header<T>(text: string, key: string): T | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`# ${key}:`));
  return line ? (YAML.parse(line.slice(`# ${key}:`.length)) as T) : undefined;
}

/** Loads and translates case `name`. Throws when the input has resource errors. */
export function runCase(name: string): ZtunnelTranslation {
  const file = path.join(CASES_DIR, `${name}.in.yaml`);
  const text = fs.readFileSync(file, 'utf8');
  const parsed = parseResources(text, `${name}.in.yaml`);
  if (parsed.errors.length > 0) throw new Error(`${file}:\n${parsed.errors.map(formatIssue).join('\n')}`);
  const unhealthy = new Set(header<string[]>(text, 'unhealthy') ?? []);
  const resources = parsed.resources.map((r): MeshResource => {
    if (r.kind !== 'WorkloadEntry' || !unhealthy.has(`${r.metadata.namespace}/${r.metadata.name}`)) return r;
    return { ...r, status: { conditions: [{ type: HEALTHY_CONDITION, status: 'False', reason: 'ProbeFailed' }] } };
  });
  return translateZtunnel(buildSnapshot(1, resources), header<ZtunnelTranslateOptions>(text, 'options') ?? {});
}

/** Raw IP bytes (base64 in protobufjs JSON) under `address`/`addresses` keys, shown as IP text. */
function showIps(value: unknown, key = ''): unknown {
  if (typeof value === 'string' && (key === 'address' || key === 'addresses')) {
    const bytes = Buffer.from(value, 'base64');
    return ipText(bytes) ?? value;
  }
  if (Array.isArray(value)) return value.map((v) => showIps(v, key));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, showIps(v, k)]));
  return value;
}

function render(t: ZtunnelTranslation): Map<string, string> {
  const list = (typeUrl: string) => [...((t.resources.get(typeUrl) ?? new Map<string, VersionedResource>()).values())].sort((a, b) => (a.name < b.name ? -1 : 1));
  const out = new Map<string, string>();
  out.set('addresses', YAML.stringify(list(TypeUrl.Address).map((r) => ({ name: r.name, ...(r.aliases ? { aliases: [...r.aliases] } : {}), resource: showIps(decodeAny(r.resource)) })), { lineWidth: 0 }));
  out.set('authorizations', YAML.stringify(list(TypeUrl.Authorization).map((r) => ({ name: r.name, resource: showIps(decodeAny(r.resource)) })), { lineWidth: 0 }));
  out.set('warnings', YAML.stringify(t.warnings, { lineWidth: 0 }));
  return out;
}

void describe('ztunnel translator golden cases', () => {
  const names = caseNames();
  void test('there are golden cases', () => assert.ok(names.length >= 10, `only ${names.length} cases in ${CASES_DIR}`));
  for (const name of names) {
    void test(name, () => {
      const t = runCase(name);
      assert.deepEqual([...t.resources.keys()].sort(), [TypeUrl.Authorization, TypeUrl.Address].sort(), 'both types are always present');
      for (const [suffix, text] of render(t)) {
        const file = path.join(CASES_DIR, `${name}.out.${suffix}.yaml`);
        if (UPDATE) {
          fs.writeFileSync(file, text);
          continue;
        }
        assert.ok(fs.existsSync(file), `${file} is missing (run with UPDATE_GOLDEN=1 to create it)`);
        assert.equal(text, fs.readFileSync(file, 'utf8'), `${name}.out.${suffix}.yaml differs (UPDATE_GOLDEN=1 rewrites it after review)`);
      }
    });
  }
});
