/**
 * The policy modules of the Envoy translator, in the order they run (ascending `order`). Adding a
 * policy kind means adding its module here; nothing registers itself on import.
 */
import { peerAuthenticationModule } from './peer-authentication.js';
import type { EnvoyPolicyModule } from './types.js';

export type { EnvoyPolicyModule, InboundChainDraft, InboundListenerDraft } from './types.js';

/** Every policy module, sorted by `order` (PeerAuthentication first; authorization follows later). */
export const POLICY_MODULES: readonly EnvoyPolicyModule[] = [peerAuthenticationModule];
