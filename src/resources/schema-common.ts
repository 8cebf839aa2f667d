/**
 * Building blocks shared by the zod schemas of every kind (`schemas.ts`, `security-schemas.ts`,
 * `mesh-config.ts`): custom issues with a path, checked strings, port numbers, labels, selectors
 * and Kubernetes object metadata, following Istio's `pkg/config/validation` rules.
 */
import { z } from 'zod';
import { describeValue, type PathSegment } from './issues.js';
import {
  ipOrCidrProblem,
  isDns1123Label,
  isDns1123LabelAnyCase,
  isDns1123Subdomain,
  isIpAddress,
  labelKeyProblem,
  labelValueProblem,
} from './names.js';
import { ISTIO_PROTOCOLS, parseProtocol } from './protocol.js';

/** The part of zod's refinement context the checks use. */
export interface RefineContext {
  addIssue(issue: { code: 'custom'; message: string; path?: PathSegment[] }): void;
}

/** Adds a custom issue at `path` (relative to the value being refined). */
export function fail(ctx: RefineContext, path: PathSegment[], message: string): void {
  ctx.addIssue({ code: 'custom', message, path });
}

/** A string checked by `problem` (returns a message when invalid). */
export function checkedString(problem: (v: string) => string | undefined) {
  return z.string().superRefine((v, ctx) => {
    const p = problem(v);
    if (p !== undefined) fail(ctx, [], p);
  });
}

/** A TCP port number, 1-65535. */
export const portNumberSchema = z
  .number({ error: (iss) => `expected integer 1-65535, got ${describeValue(iss.input)}` })
  .int()
  .min(1)
  .max(65535);

/** A port name: a DNS-1123 label (Istio `ValidatePortName`; letter case is not enforced). */
export const portNameSchema = checkedString((v) =>
  isDns1123LabelAnyCase(v) ? undefined : `invalid port name ${describeValue(v)}: must be a DNS-1123 label (letters, digits, '-', at most 63)`,
);

/** A protocol name, case-insensitive, normalised to Istio's spelling; `""` means unset (sniffing). */
export const protocolSchema = z.string().transform((v, ctx) => {
  if (v === '') return undefined;
  const p = parseProtocol(v);
  if (p === undefined) {
    ctx.addIssue({ code: 'custom', message: `unsupported protocol ${describeValue(v)} (expected one of ${ISTIO_PROTOCOLS.join('|')}, any case)` });
    return z.NEVER;
  }
  return p;
});

/** An IPv4 or IPv6 address. */
export const ipAddressSchema = checkedString((v) => (isIpAddress(v) ? undefined : `expected an IP address, got ${describeValue(v)}`));

/** Kubernetes labels: keys `[prefix/]name`, values empty or a qualified name. */
export const labelsSchema = z.record(z.string(), z.string()).superRefine((labels, ctx) => {
  for (const [k, v] of Object.entries(labels)) {
    const p = labelKeyProblem(k) ?? labelValueProblem(v);
    if (p !== undefined) fail(ctx, [k], p);
  }
});

/** Selector labels (Istio `ValidateAlphaWorkloadSelector`): no empty keys, no wildcards. */
export const selectorLabelsSchema = z.record(z.string(), z.string()).superRefine((labels, ctx) => {
  for (const [k, v] of Object.entries(labels)) {
    if (k === '') fail(ctx, [k], 'empty key is not supported in a selector');
    else if (k.includes('*') || v.includes('*')) fail(ctx, [k], `wildcard is not supported in a selector: "${k}=${v}"`);
  }
});

/** Kubernetes object metadata; `namespace` defaults to `default`. */
export const metadataSchema = z.strictObject({
  name: checkedString((v) =>
    isDns1123Subdomain(v) ? undefined : `invalid name ${describeValue(v)}: must be a lower-case DNS-1123 subdomain (a-z, 0-9, '-', '.')`,
  ),
  namespace: checkedString((v) =>
    isDns1123Label(v) ? undefined : `invalid namespace ${describeValue(v)}: must be a lower-case DNS-1123 label (a-z, 0-9, '-', at most 63)`,
  ).default('default'),
  labels: labelsSchema.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  resourceVersion: z.string().optional(),
  creationTimestamp: checkedString((v) =>
    Number.isNaN(Date.parse(v)) ? `expected an RFC 3339 timestamp, got ${describeValue(v)}` : undefined,
  ).optional(),
});

/** networking.istio.io `WorkloadSelector`. */
export const workloadSelectorSchema = z.strictObject({ labels: selectorLabelsSchema.optional() });

/** istio.type.v1beta1 `WorkloadSelector` (PeerAuthentication `selector`). */
export const labelSelectorSchema = z.strictObject({ matchLabels: selectorLabelsSchema.optional() });

/** An IP address or CIDR block, as Istio's `ValidateIPSubnet`. */
export const ipOrCidrSchema = checkedString(ipOrCidrProblem);
