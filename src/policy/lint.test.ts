import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatIssue } from '../resources/issues.js';
import { parseResources } from '../resources/parse.js';
import { inboundPorts } from './destination.js';
import { lintPolicies } from './lint.js';
import type { WorkloadEntry } from '../resources/types.js';

const BASE = `
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: db, namespace: demo, labels: {app: db}}
spec: {address: 198.18.0.11, ports: {tcp: 5433}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: demo}
spec:
  hosts: [db.demo.svc]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{name: tcp, number: 5432, protocol: TCP}, {name: http-admin, number: 8081}]
  workloadSelector: {labels: {app: db}}
`;

function lint(extra: string, providers?: Parameters<typeof lintPolicies>[1]['extensionProviders']): string[] {
  const parsed = parseResources(`${BASE}---\n${extra}`, 'm.yaml');
  assert.deepEqual(parsed.errors, []);
  return lintPolicies(parsed.resources, { rootNamespace: 'skiff-system', extensionProviders: providers, locate: parsed.locate }).map(formatIssue);
}

void describe('policy lint', () => {
  void it('reads inbound ports from the ServiceEntries that select a workload', () => {
    const parsed = parseResources(BASE, 'm.yaml');
    const we = parsed.resources.find((r): r is WorkloadEntry => r.kind === 'WorkloadEntry')!;
    assert.deepEqual(
      inboundPorts(parsed.resources, we, 'skiff-system').map((p) => `${p.port}/${p.protocol}`),
      ['5433/TCP', '8081/HTTP'],
    );
  });

  void it('warns about a DENY rule whose HTTP-only fields are dropped on a TCP port', () => {
    const out = lint('apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: d, namespace: demo}\nspec:\n  action: DENY\n  rules:\n  - to: [{operation: {methods: [POST]}}]\n');
    assert.ok(out.includes('m.yaml:23 spec.rules[0]: HTTP-only attributes (to[0].operation.methods) are ignored on TCP ports (demo/db:5433): on those ports this DENY rule matches more'), out.join('\n'));
  });

  void it('warns when several CUSTOM providers apply to one workload', () => {
    const policy = (name: string, provider: string) =>
      `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: ${name}, namespace: demo}\nspec:\n  action: CUSTOM\n  provider: {name: ${provider}}\n  rules: [{to: [{operation: {ports: ["5433"]}}]}]\n`;
    const out = lint(`${policy('a', 'one')}---\n${policy('b', 'two')}`, [
      { name: 'one', envoyExtAuthzGrpc: { service: 'one.svc', port: 9000 } },
      { name: 'two', envoyExtAuthzGrpc: { service: 'two.svc', port: 9000 } },
    ]);
    assert.ok(out.some((l) => l.includes('CUSTOM policies with several providers apply (one, two; demo/a, demo/b)')), out.join('\n'));
  });

  void it('warns about a policy that applies to no workload', () => {
    const out = lint(
      'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: none, namespace: demo}\nspec:\n  selector: {matchLabels: {app: nothing}}\n',
    );
    assert.ok(out.some((l) => l.includes('ALLOW policy applies to no WorkloadEntry (namespace demo, with its selector)')), out.join('\n'));
  });
});
