import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { messageType } from '../protos/loader.js';
import { decodeDiscoveryRequest, encodeDiscoveryRequest } from './messages.js';
import { decodeNode, jsonToStruct, NodeMetadataError, nodeToObject, structToJson, type StructObject } from './node.js';

const ISTIO_NODE = {
  id: 'sidecar~198.18.0.2~a-1.payments~payments.svc.cluster.local',
  cluster: 'a.payments',
  metadata: {
    NAMESPACE: 'payments',
    SERVICE_ACCOUNT: 'a',
    LABELS: { app: 'a', version: 'v1' },
    WORKLOAD_NAME: 'a-1',
    CLUSTER_ID: 'vm',
    PORTS: [8080, 9090],
    MESH: null,
    INTERCEPTION: false,
  },
  userAgentName: 'envoy',
  userAgentVersion: '1.40.0',
};

void describe('xDS node', () => {
  void it('round-trips an Istio-style node through the wire, metadata Struct included', () => {
    const bytes = encodeDiscoveryRequest({ node: ISTIO_NODE, typeUrl: 'type.googleapis.com/envoy.config.cluster.v3.Cluster' });
    const decoded = decodeDiscoveryRequest(bytes);
    assert.deepEqual(decoded.node, ISTIO_NODE);
    assert.equal(decoded.typeUrl, 'type.googleapis.com/envoy.config.cluster.v3.Cluster');
    assert.equal(decoded.responseNonce, '');
    assert.equal(decoded.errorDetail, undefined);
  });

  void it('decodes a Node message with nested metadata into plain JSON', () => {
    const type = messageType('envoy.config.core.v3.Node');
    const bytes = type
      .encode(
        type.fromObject({
          id: 'n1',
          cluster: 'c1',
          metadata: { fields: { NAMESPACE: { stringValue: 'default' }, LABELS: { structValue: { fields: { app: { stringValue: 'web' } } } } } },
          userAgentName: 'envoy',
        }),
      )
      .finish();
    const node = decodeNode(type.toObject(type.decode(bytes)));
    assert.deepEqual(node, { id: 'n1', cluster: 'c1', metadata: { NAMESPACE: 'default', LABELS: { app: 'web' } }, userAgentName: 'envoy' });
  });

  void it('gives an empty id and metadata for a node without them', () => {
    assert.deepEqual(decodeNode({}), { id: '', cluster: '', metadata: {} });
    assert.deepEqual(structToJson(undefined), {});
  });

  void it('refuses metadata JSON cannot hold and nesting beyond 32 levels, with the path', () => {
    assert.throws(() => jsonToStruct({ a: { b: () => 1 } }), (err: unknown) => err instanceof NodeMetadataError && /a\.b: function/.test(err.message));
    let deep: Record<string, unknown> = { leaf: 1 };
    for (let i = 0; i < 40; i++) deep = { d: deep };
    assert.throws(() => jsonToStruct(deep), /nested deeper than 32 levels/);
    assert.throws(() => structToJson(deepStruct(40)), /nested deeper than 32 levels/);
    assert.deepEqual(structToJson(nodeToObject({ id: 'x', cluster: '', metadata: { a: [1, 'two'] } }).metadata), { a: [1, 'two'] });
  });
});

function deepStruct(levels: number): StructObject {
  let s: StructObject = { fields: { leaf: { numberValue: 1 } } };
  for (let i = 0; i < levels; i++) s = { fields: { d: { structValue: s } } };
  return s;
}
