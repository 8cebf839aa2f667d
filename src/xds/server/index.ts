/** The ADS (state of the world and delta) server over @grpc/grpc-js, and xDS wire helpers. */
export { createAdsServer, type AdsCall, type AdsDeltaCall, type AdsServer, type AdsServerOptions, type AdsSotwCall } from './ads-server.js';
export { typeLabel, type AuthorizeResult, type NackInfo, type StreamInfo, type StreamTypeInfo } from './stream-base.js';
export {
  ADS_SOTW_PATH,
  decodeDiscoveryRequest,
  decodeDiscoveryResponse,
  encodeDiscoveryRequest,
  encodeDiscoveryResponse,
  type DiscoveryRequestMessage,
  type DiscoveryResponseMessage,
} from './messages.js';
export {
  ADS_DELTA_PATH,
  decodeDeltaDiscoveryRequest,
  decodeDeltaDiscoveryResponse,
  encodeDeltaDiscoveryRequest,
  encodeDeltaDiscoveryResponse,
  type DeltaDiscoveryRequestMessage,
  type DeltaDiscoveryResponseMessage,
  type DeltaResource,
} from './delta-messages.js';
export { decodeNode, jsonToStruct, nodeToObject, structToJson, NodeMetadataError } from './node.js';
