/**
 * The contract of a policy module of the Envoy translator (DESIGN.md §1): each policy kind is one
 * module `{name, order, apply()}` that shapes the draft of an inbound listener before it is
 * rendered. Modules run in ascending `order`, from the explicit list in `policies/index.ts`.
 */
import type { InboundListenerIR, ProxyIR } from '../../../ir/types.js';
import type { NamedFilter } from '../envoy-types.js';

/**
 * Where a filter goes in a chain, in Istio's inbound order: the CUSTOM authorization pair (RBAC in
 * shadow mode, then ext_authz), then authentication (the JWT filter), then the enforcing
 * authorization filters (AUDIT, DENY, ALLOW). The renderer concatenates the slots in this order.
 */
export interface FilterSlots {
  /** CUSTOM action: the RBAC filter that marks matching requests, then the ext_authz filter. */
  authzCustom: NamedFilter[];
  /** Request authentication (`envoy.filters.http.jwt_authn`); HTTP only. */
  authn: NamedFilter[];
  /** AUDIT, DENY and ALLOW RBAC filters, in that order. */
  authz: NamedFilter[];
}

/** The slot names in rendering order. */
export const SLOT_ORDER: ReadonlyArray<keyof FilterSlots> = ['authzCustom', 'authn', 'authz'];

/** Empty slots. */
export function emptySlots(): FilterSlots {
  return { authzCustom: [], authn: [], authz: [] };
}

/** The filters of `slots` in rendering order. */
export function slotFilters(slots: FilterSlots): NamedFilter[] {
  return SLOT_ORDER.flatMap((k) => slots[k]);
}

/**
 * One filter chain of an inbound listener, before rendering. The renderer appends the terminal
 * filter (HTTP connection manager with the router last, or tcp_proxy) and, for `tls`, the
 * downstream mTLS transport socket.
 */
export interface InboundChainDraft {
  /** Chain name suffix, unique within the listener (`mtls`, `plaintext`). */
  name: string;
  /** Whether the chain terminates mutual TLS (client certificate required). */
  tls: boolean;
  /** `filterChainMatch.transportProtocol` when the listener has chains of both kinds. */
  matchTransport?: 'tls' | 'raw_buffer';
  /** Network filters before the terminal filter (TCP ports: network RBAC and ext_authz). */
  networkFilters: FilterSlots;
  /** HTTP filters before the router (HTTP ports: ext_authz, JWT, HTTP RBAC). */
  httpFilters: FilterSlots;
}

/** An inbound listener being built: the policy modules fill `chains` and `listenerFilters`. */
export interface InboundListenerDraft {
  readonly listener: InboundListenerIR;
  listenerFilters: NamedFilter[];
  /** Starts empty; a listener rendered with no chain is an error (fail closed). */
  chains: InboundChainDraft[];
}

/** A policy kind's contribution to Envoy configuration. */
export interface EnvoyPolicyModule {
  /** The policy kind, e.g. `PeerAuthentication`. */
  readonly name: string;
  /** Position in the pipeline; lower runs first. */
  readonly order: number;
  /** Shapes `draft` for `ir`; reports what it could not honour through `warn`. */
  apply(draft: InboundListenerDraft, ir: ProxyIR, warn: (msg: string) => void): void;
}
