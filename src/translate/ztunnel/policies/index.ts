/** The ztunnel translator's policy modules, in the order they run (no import side effects). */
import { authorizationPolicyModule } from './authorization-policy.js';
import { peerAuthenticationModule } from './peer-authentication.js';
import type { ZtunnelPolicyModule } from './types.js';

export { convertAuthorizationPolicy, stringMatch } from './authorization-policy.js';
export { convertPeerAuthentication, peerAuthenticationKeys, CONVERTED_PEER_AUTHENTICATION_PREFIX, STATIC_STRICT_POLICY } from './peer-authentication.js';
export type * from './types.js';

/** Every module, in ascending `order`: AuthorizationPolicy, then PeerAuthentication. */
export const ZTUNNEL_POLICY_MODULES: readonly ZtunnelPolicyModule[] = [authorizationPolicyModule, peerAuthenticationModule];
