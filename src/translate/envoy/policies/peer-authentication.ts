/**
 * PeerAuthentication on inbound listeners (DESIGN.md §6; Istio's mTLS modes,
 * https://istio.io/latest/docs/reference/config/security/peer_authentication/):
 * STRICT: one mTLS chain; PERMISSIVE: the TLS inspector picks an mTLS chain (`tls`) or a plaintext
 * chain (`raw_buffer`); DISABLE: one plaintext chain. The mode per port was resolved by the push
 * context (`listener.mtls`).
 */
import { ExtensionType, FilterName } from '../common.js';
import { emptySlots, type EnvoyPolicyModule, type InboundChainDraft } from './types.js';

function chain(name: string, tls: boolean, matchTransport?: 'tls' | 'raw_buffer'): InboundChainDraft {
  const c: InboundChainDraft = { name, tls, networkFilters: emptySlots(), httpFilters: emptySlots() };
  if (matchTransport) c.matchTransport = matchTransport;
  return c;
}

/** The PeerAuthentication module: creates the inbound filter chains. */
export const peerAuthenticationModule: EnvoyPolicyModule = {
  name: 'PeerAuthentication',
  order: 100,
  apply(draft) {
    switch (draft.listener.mtls) {
      case 'STRICT':
        draft.chains = [chain('mtls', true)];
        return;
      case 'PERMISSIVE':
        if (!draft.listenerFilters.some((f) => f.name === FilterName.TlsInspector)) {
          draft.listenerFilters.push({ name: FilterName.TlsInspector, typedConfig: { '@type': ExtensionType.TlsInspector } });
        }
        draft.chains = [chain('mtls', true, 'tls'), chain('plaintext', false, 'raw_buffer')];
        return;
      case 'DISABLE':
        draft.chains = [chain('plaintext', false)];
        return;
    }
  },
};
