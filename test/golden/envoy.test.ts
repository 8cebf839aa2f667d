/**
 * Golden tests of the Envoy translator: each `envoy/<case>.in.yaml` (mesh resources and the proxy
 * they are computed for) must produce exactly `envoy/<case>.out.{listeners,routes,clusters,endpoints}.yaml`
 * (the xDS resources, decoded from their encoded bytes) and `<case>.out.warnings.yaml` (what the
 * control plane would log). Run with `UPDATE_GOLDEN=1` to rewrite the outputs after a reviewed change.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import YAML from 'yaml';
import { decodeAny, TypeUrl } from '../../src/xds/protos/loader.js';
import type { VersionedResource } from '../../src/xds/types.js';
import { CASES_DIR, caseNames, runCase, type EnvoyCase } from './envoy-cases.js';

const UPDATE = process.env['UPDATE_GOLDEN'] === '1';

const OUTPUTS: Array<[string, string]> = [
  ['listeners', TypeUrl.Listener],
  ['routes', TypeUrl.RouteConfiguration],
  ['clusters', TypeUrl.Cluster],
  ['endpoints', TypeUrl.ClusterLoadAssignment],
];

function render(c: EnvoyCase): Map<string, string> {
  const out = new Map<string, string>();
  for (const [suffix, typeUrl] of OUTPUTS) {
    const byName: ReadonlyMap<string, VersionedResource> = c.translation.resources.get(typeUrl) ?? new Map<string, VersionedResource>();
    const decoded = [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : 1)).map((r) => decodeAny(r.resource));
    out.set(suffix, YAML.stringify(decoded, { lineWidth: 0 }));
  }
  out.set('warnings', YAML.stringify({ ir: c.ir.warnings, validate: c.validationErrors, translate: c.translation.warnings }, { lineWidth: 0 }));
  return out;
}

void describe('Envoy translator golden cases', () => {
  const names = caseNames();
  void test('there are golden cases', () => assert.ok(names.length >= 8, `only ${names.length} cases in ${CASES_DIR}`));
  for (const name of names) {
    void test(name, () => {
      const c = runCase(name);
      assert.deepEqual(c.validationErrors, [], 'the IR validates');
      for (const [typeUrl, names] of c.translation.references) {
        for (const n of names) assert.ok(c.translation.resources.get(typeUrl)?.has(n), `${typeUrl} ${n} is referenced and present`);
      }
      for (const [suffix, text] of render(c)) {
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
