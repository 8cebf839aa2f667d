/**
 * The policy modules of the Envoy translator, in the order they run (ascending `order`). Adding a
 * policy kind means adding its module here; nothing registers itself on import.
 */
import { authorizationPolicyModule } from './authorization-policy.js';
import { peerAuthenticationModule } from './peer-authentication.js';
import { requestAuthenticationModule } from './request-authentication.js';
import type { EnvoyPolicyModule } from './types.js';

export type { EnvoyPolicyModule, FilterSlots, InboundChainDraft, InboundListenerDraft } from './types.js';
export { emptySlots, slotFilters, SLOT_ORDER } from './types.js';

/**
 * Every policy module, sorted by `order`: PeerAuthentication (filter chains, 100),
 * RequestAuthentication (JWT filter, 200), AuthorizationPolicy (CUSTOM, AUDIT, DENY, ALLOW, 300).
 */
export const POLICY_MODULES: readonly EnvoyPolicyModule[] = [peerAuthenticationModule, requestAuthenticationModule, authorizationPolicyModule];
