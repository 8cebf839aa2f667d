/** The ADS (state of the world) server over @grpc/grpc-js, and xDS wire helpers. */
export { createAdsServer, type AdsCall, type AdsServer, type AdsServerOptions } from './ads-server.js';
export { typeLabel, type AuthorizeResult, type NackInfo, type StreamInfo, type StreamTypeInfo } from './sotw-stream.js';
export {
  ADS_SOTW_PATH,
  decodeDiscoveryRequest,
  decodeDiscoveryResponse,
  encodeDiscoveryRequest,
  encodeDiscoveryResponse,
  type DiscoveryRequestMessage,
  type DiscoveryResponseMessage,
} from './messages.js';
export { decodeNode, jsonToStruct, nodeToObject, structToJson, NodeMetadataError } from './node.js';
