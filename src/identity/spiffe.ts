/**
 * SPIFFE IDs in Istio's form: `spiffe://<trust domain>/ns/<namespace>/sa/<service account>`.
 *
 * Character rules follow the SPIFFE-ID standard (spiffe/spiffe `standards/SPIFFE-ID.md` §2.1
 * trust domain, §2.2 path): a trust domain holds only lowercase letters, digits, `.`, `-` and `_`;
 * a path segment holds letters, digits, `.`, `-` and `_`, is never empty and is never `.` or `..`.
 * No port, user info, query or fragment is allowed. On top of that Skiff only accepts the Istio
 * path shape `/ns/<namespace>/sa/<service account>` (the one Istio and ztunnel use).
 */

/** The namespace Skiff's own components live in (DESIGN.md §3: the root namespace). */
export const SYSTEM_NAMESPACE = 'skiff-system';

/** The service account the control plane's identity uses. */
export const CONTROL_PLANE_SERVICE_ACCOUNT = 'skiff-control-plane';

/** The parts of an Istio-style SPIFFE ID. */
export interface SpiffeIdParts {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

/** Thrown by {@link parseSpiffeId} and {@link spiffeId} for an ID that breaks the rules above. */
export class SpiffeIdError extends Error {
  constructor(
    message: string,
    readonly input: string,
  ) {
    super(message);
    this.name = 'SpiffeIdError';
  }
}

const TRUST_DOMAIN_RE = /^[a-z0-9._-]+$/;
const SEGMENT_RE = /^[A-Za-z0-9._-]+$/;
/** SPIFFE-ID §2.3: a SPIFFE ID is at most 2048 bytes; a trust domain at most 255 characters. */
const MAX_ID_BYTES = 2048;
const MAX_TRUST_DOMAIN = 255;

function checkTrustDomain(td: string, input: string): void {
  if (td.length === 0) throw new SpiffeIdError(`SPIFFE ID ${JSON.stringify(input)}: trust domain is empty`, input);
  if (td.length > MAX_TRUST_DOMAIN) throw new SpiffeIdError(`SPIFFE ID ${JSON.stringify(input)}: trust domain longer than ${MAX_TRUST_DOMAIN} characters`, input);
  if (!TRUST_DOMAIN_RE.test(td)) {
    throw new SpiffeIdError(`SPIFFE ID ${JSON.stringify(input)}: trust domain ${JSON.stringify(td)} may hold only a-z, 0-9, '.', '-', '_'`, input);
  }
}

function checkSegment(seg: string, what: string, input: string): void {
  if (seg.length === 0) throw new SpiffeIdError(`SPIFFE ID ${JSON.stringify(input)}: ${what} is empty`, input);
  if (seg === '.' || seg === '..') throw new SpiffeIdError(`SPIFFE ID ${JSON.stringify(input)}: ${what} may not be '.' or '..'`, input);
  if (!SEGMENT_RE.test(seg)) {
    throw new SpiffeIdError(`SPIFFE ID ${JSON.stringify(input)}: ${what} ${JSON.stringify(seg)} may hold only A-Z, a-z, 0-9, '.', '-', '_'`, input);
  }
}

/**
 * Builds `spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>`.
 * Throws {@link SpiffeIdError} if a part breaks the SPIFFE character rules.
 */
export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  const id = `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
  checkTrustDomain(trustDomain, id);
  checkSegment(namespace, 'namespace', id);
  checkSegment(serviceAccount, 'service account', id);
  if (Buffer.byteLength(id) > MAX_ID_BYTES) throw new SpiffeIdError(`SPIFFE ID longer than ${MAX_ID_BYTES} bytes`, id);
  return id;
}

/**
 * Parses `spiffe://<td>/ns/<namespace>/sa/<serviceAccount>` into its parts. Throws
 * {@link SpiffeIdError} for anything else: another scheme (the scheme is case-sensitive
 * lowercase), a port, user info, query or fragment, percent-encoding, an empty or dot segment, or a
 * path that is not exactly `/ns/<x>/sa/<y>`.
 */
export function parseSpiffeId(uri: string): SpiffeIdParts {
  if (typeof uri !== 'string') throw new SpiffeIdError('SPIFFE ID must be a string', String(uri));
  const q = JSON.stringify(uri);
  if (Buffer.byteLength(uri) > MAX_ID_BYTES) throw new SpiffeIdError(`SPIFFE ID longer than ${MAX_ID_BYTES} bytes`, uri);
  const prefix = 'spiffe://';
  if (!uri.startsWith(prefix)) throw new SpiffeIdError(`SPIFFE ID ${q}: must start with "spiffe://"`, uri);
  const rest = uri.slice(prefix.length);
  const slash = rest.indexOf('/');
  const td = slash < 0 ? rest : rest.slice(0, slash);
  checkTrustDomain(td, uri); // also refuses ':' (port), '@' (user info), '?' and '#'
  if (slash < 0) throw new SpiffeIdError(`SPIFFE ID ${q}: path is missing; expected /ns/<namespace>/sa/<service account>`, uri);
  const segments = rest.slice(slash + 1).split('/');
  if (segments.length !== 4 || segments[0] !== 'ns' || segments[2] !== 'sa') {
    throw new SpiffeIdError(`SPIFFE ID ${q}: path must be /ns/<namespace>/sa/<service account>`, uri);
  }
  const namespace = segments[1] ?? '';
  const serviceAccount = segments[3] ?? '';
  checkSegment(namespace, 'namespace', uri);
  checkSegment(serviceAccount, 'service account', uri);
  return { trustDomain: td, namespace, serviceAccount };
}

/** True if `uri` is a valid Istio-style SPIFFE ID (see {@link parseSpiffeId}). */
export function isSpiffeId(uri: string): boolean {
  try {
    parseSpiffeId(uri);
    return true;
  } catch {
    return false;
  }
}

/**
 * The control plane's own SPIFFE ID in trust domain `td`:
 * `spiffe://<td>/ns/skiff-system/sa/skiff-control-plane` (DESIGN.md §4). It is the `iss` of
 * bootstrap tokens and the URI SAN of the control plane's serving certificate.
 */
export function CONTROL_PLANE_SPIFFE_ID(td: string): string {
  return spiffeId(td, SYSTEM_NAMESPACE, CONTROL_PLANE_SERVICE_ACCOUNT);
}

/** Alias of {@link CONTROL_PLANE_SPIFFE_ID} in camelCase. */
export const controlPlaneSpiffeId = CONTROL_PLANE_SPIFFE_ID;
