/**
 * Syntax checks for the names and addresses that appear in Istio resources: DNS-1123 labels and
 * subdomains (RFC 1123 as Kubernetes applies it), wildcard hosts, Kubernetes label keys/values,
 * IP addresses and CIDR blocks. The rules follow Istio's `pkg/config/validation` and
 * `pkg/config/labels` so that YAML Istio accepts is accepted here.
 *
 * Every `*Problem` function returns `undefined` when the input is valid, else a short message.
 */
import { isIP } from 'node:net';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** Istio's port names and egress namespaces are DNS-1123 labels but Istio also accepts upper case. */
const DNS1123_LABEL_ANY_CASE = /^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
/** A wildcard first label: `*`, or a label with a leading `*` or `*-` (Istio `labels.IsWildcardDNS1123Label`). */
const WILDCARD_LABEL = /^(\*|(\*|\*-)?[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)$/;
/** Kubernetes qualified name (label key name part, label values). */
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

/** True for a lower-case DNS-1123 label (at most 63 characters), e.g. a namespace. */
export function isDns1123Label(value: string): boolean {
  return value.length <= 63 && DNS1123_LABEL.test(value);
}

/** True for a DNS-1123 label in any letter case, as Istio checks port names (`ValidatePortName`). */
export function isDns1123LabelAnyCase(value: string): boolean {
  return value.length <= 63 && DNS1123_LABEL_ANY_CASE.test(value);
}

/** True for a lower-case DNS-1123 subdomain (dot-separated labels, at most 253 characters), e.g. a resource name. */
export function isDns1123Subdomain(value: string): boolean {
  return value.length > 0 && value.length <= 253 && value.split('.').every(isDns1123Label);
}

/** True for an IPv4 or IPv6 address (no brackets, no zone). */
export function isIpAddress(value: string): boolean {
  return isIP(value) !== 0;
}

/** Problem with an IP address or CIDR block (`10.0.0.0/8`, `2001:db8::/32`), as Istio's `ValidateIPSubnet`. */
export function ipOrCidrProblem(value: string): string | undefined {
  const slash = value.split('/');
  if (slash.length === 1) return isIpAddress(value) ? undefined : `"${value}" is not a valid IP address`;
  if (slash.length !== 2) return `"${value}" is not a valid CIDR block`;
  const [ip = '', bits = ''] = slash;
  const family = isIP(ip);
  const max = family === 4 ? 32 : 128;
  if (family === 0 || !/^[0-9]{1,3}$/.test(bits) || Number(bits) > max) return `"${value}" is not a valid CIDR block`;
  return undefined;
}

/** Checks dot-separated DNS labels after the first one (Istio `ValidateDNS1123Labels`). */
function dnsLabelsProblem(domain: string, whole: string): string | undefined {
  const parts = domain.split('.');
  const top = parts[parts.length - 1] ?? '';
  if (/^[0-9]+$/.test(top)) return `domain name "${whole}" is invalid (top level domain "${top}" cannot be all-numeric)`;
  for (let i = 0; i < parts.length; i++) {
    const label = parts[i] ?? '';
    // A trailing dot (`example.com.`) is allowed.
    if (i === parts.length - 1 && label === '') return undefined;
    if (!isDns1123LabelAnyCase(label)) return `domain name "${whole}" is invalid (label "${label}" is invalid)`;
  }
  return undefined;
}

/**
 * Problem with a host that may start with a wildcard label (`*.example.com`, `*`), as Istio's
 * `ValidateWildcardDomain`.
 */
export function wildcardDomainProblem(host: string): string | undefined {
  if (host.length === 0) return 'empty host name';
  if (host.length > 255) return `host name "${host}" is too long (max 255)`;
  const dot = host.indexOf('.');
  const first = dot < 0 ? host : host.slice(0, dot);
  if (!WILDCARD_LABEL.test(first) || first.length > 63) return `domain name "${host}" is invalid (label "${first}" is invalid)`;
  return dot < 0 ? undefined : dnsLabelsProblem(host.slice(dot + 1), host);
}

/** Problem with a fully-qualified DNS name without wildcards (Istio `ValidateFQDN`). */
export function fqdnProblem(host: string): string | undefined {
  if (host.length === 0) return 'empty host name';
  if (host.length > 255) return `host name "${host}" is too long (max 255)`;
  return dnsLabelsProblem(host, host);
}

/** True when `host` has a wildcard anywhere other than as a whole leading `*.` label (Istio `ValidatePartialWildCard`). */
export function isPartialWildcard(host: string): boolean {
  return host.includes('*') && host !== '*' && !host.startsWith('*.');
}

/** Problem with a Kubernetes label key (`[prefix/]name`), as Istio's `validateTagKey`. */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length > 253 || !prefix.split('.').every(isDns1123LabelAnyCase))) {
    return `invalid label key "${key}" (prefix must be a DNS subdomain)`;
  }
  if (!QUALIFIED_NAME.test(name) || name.length > 63) return `invalid label key "${key}"`;
  return undefined;
}

/** Problem with a Kubernetes label value (empty or a qualified name of at most 63 characters). */
export function labelValueProblem(value: string): string | undefined {
  if (value === '') return undefined;
  if (!QUALIFIED_NAME.test(value) || value.length > 63) return `invalid label value "${value}"`;
  return undefined;
}
