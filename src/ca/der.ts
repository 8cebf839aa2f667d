/**
 * A minimal DER (ITU-T X.690) encoder and reader, enough for the CA's hot path: reading PKCS#10
 * CSRs (RFC 2986) and building X.509 v3 TBSCertificates (RFC 5280 §4.1). Only definite lengths,
 * as DER requires. The reader checks every length against the buffer and throws
 * {@link DerError} on anything malformed.
 */

/** Malformed DER input. */
export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DerError';
  }
}

/** Universal and context tags used here. */
export const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

// ---------------------------------------------------------------- encoding

/** Number of bytes the DER length field of `len` takes. */
function lengthSize(len: number): number {
  if (len < 0x80) return 1;
  let n = 0;
  for (let v = len; v > 0; v = Math.floor(v / 256)) n++;
  return 1 + n;
}

/**
 * One TLV: `tag`, then the DER length of the concatenated `content`, then the content. Allocates
 * the result once (this sits on the CA's signing hot path, called a dozen times per certificate).
 */
export function tlv(tag: number, ...content: Uint8Array[]): Buffer {
  let len = 0;
  for (const c of content) len += c.length;
  const lenSize = lengthSize(len);
  const out = Buffer.allocUnsafe(1 + lenSize + len);
  out[0] = tag;
  if (lenSize === 1) {
    out[1] = len;
  } else {
    out[1] = 0x80 | (lenSize - 1);
    for (let i = lenSize, v = len; i >= 2; i--, v = Math.floor(v / 256)) out[i] = v & 0xff;
  }
  let pos = 1 + lenSize;
  for (const c of content) {
    out.set(c, pos);
    pos += c.length;
  }
  return out;
}

/** SEQUENCE of already-encoded elements. */
export function seq(...items: Uint8Array[]): Buffer {
  return tlv(Tag.SEQUENCE, ...items);
}

/** Context-specific constructed tag `[n]` (explicit tagging) around encoded elements. */
export function explicit(n: number, ...items: Uint8Array[]): Buffer {
  return tlv(0xa0 | n, ...items);
}

/** INTEGER from big-endian unsigned magnitude bytes (adds a 0x00 if the top bit is set). */
export function integerUnsigned(magnitude: Uint8Array): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const trimmed = Buffer.from(magnitude.subarray(i));
  return tlv(Tag.INTEGER, (trimmed[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

/** INTEGER from a small non-negative number. */
export function integerSmall(n: number): Buffer {
  const bytes: number[] = [];
  let v = n;
  do {
    bytes.unshift(v & 0xff);
    v = Math.floor(v / 256);
  } while (v > 0);
  return integerUnsigned(Uint8Array.from(bytes));
}

/** OBJECT IDENTIFIER from dotted form (`2.5.29.17`). */
export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map((a) => Number(a));
  const [first = 0, second = 0, ...rest] = arcs;
  const out: number[] = [first * 40 + second];
  for (const arc of rest) {
    const chunk: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift((v & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return tlv(Tag.OID, Uint8Array.from(out));
}

/** BOOLEAN TRUE (DER: 0xff). */
export const TRUE = Buffer.from([Tag.BOOLEAN, 0x01, 0xff]);
/** NULL. */
export const NULL = Buffer.from([Tag.NULL, 0x00]);

/** OCTET STRING. */
export function octetString(content: Uint8Array): Buffer {
  return tlv(Tag.OCTET_STRING, content);
}

/** BIT STRING holding whole bytes (0 unused bits), e.g. a signature. */
export function bitStringBytes(content: Uint8Array): Buffer {
  return tlv(Tag.BIT_STRING, Buffer.from([0]), content);
}

/**
 * BIT STRING of named bits (RFC 5280 KeyUsage): bit 0 is the most significant bit of the first
 * byte; trailing zero bits are dropped as DER requires.
 */
export function namedBits(bits: number[]): Buffer {
  const highest = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(highest / 8) + 1);
  for (const b of bits) bytes[Math.floor(b / 8)] = (bytes[Math.floor(b / 8)] ?? 0) | (0x80 >> b % 8);
  const unused = 7 - (highest % 8);
  return tlv(Tag.BIT_STRING, Buffer.from([unused]), bytes);
}

/** RFC 5280 §4.1.2.5 Time: UTCTime through 2049, GeneralizedTime from 2050; whole seconds, `Z`. */
export function time(date: Date): Buffer {
  const out = Buffer.allocUnsafe(timeSize(date));
  writeTime(out, 0, date);
  return out;
}

/** Encoded size of {@link time}(`date`): 15 bytes for UTCTime (1950–2049), 17 for GeneralizedTime. */
export function timeSize(date: Date): number {
  const y = date.getUTCFullYear();
  return y >= 1950 && y < 2050 ? 15 : 17;
}

/**
 * Writes {@link time}(`date`) at `pos` (the caller sized `out` with {@link timeSize}); returns the
 * position after it. Digits are written directly, without building a string.
 */
export function writeTime(out: Uint8Array, pos: number, date: Date): number {
  const y = date.getUTCFullYear();
  if (y < 0 || y > 9999) throw new DerError(`year ${y} cannot be encoded as an X.509 Time`);
  let p = pos;
  if (y >= 1950 && y < 2050) {
    out[p++] = Tag.UTC_TIME;
    out[p++] = 13;
    p = twoDigits(out, p, y % 100);
  } else {
    out[p++] = Tag.GENERALIZED_TIME;
    out[p++] = 15;
    p = twoDigits(out, p, Math.floor(y / 100));
    p = twoDigits(out, p, y % 100);
  }
  p = twoDigits(out, p, date.getUTCMonth() + 1);
  p = twoDigits(out, p, date.getUTCDate());
  p = twoDigits(out, p, date.getUTCHours());
  p = twoDigits(out, p, date.getUTCMinutes());
  p = twoDigits(out, p, date.getUTCSeconds());
  out[p++] = 0x5a; // 'Z'
  return p;
}

function twoDigits(out: Uint8Array, pos: number, n: number): number {
  out[pos] = 0x30 + Math.floor(n / 10);
  out[pos + 1] = 0x30 + (n % 10);
  return pos + 2;
}

/** Total size of a TLV whose content is `contentLength` bytes (tag + DER length + content). */
export function tlvSize(contentLength: number): number {
  return 1 + lengthSize(contentLength) + contentLength;
}

/**
 * Writes a tag and the DER length `contentLength` at `pos`; returns the position of the first
 * content byte. For building DER in one preallocated buffer (sizes from {@link tlvSize}).
 */
export function writeHeader(out: Uint8Array, pos: number, tag: number, contentLength: number): number {
  out[pos] = tag;
  if (contentLength < 0x80) {
    out[pos + 1] = contentLength;
    return pos + 2;
  }
  const n = lengthSize(contentLength) - 1;
  out[pos + 1] = 0x80 | n;
  for (let i = n, v = contentLength; i >= 1; i--, v = Math.floor(v / 256)) out[pos + 1 + i] = v & 0xff;
  return pos + 2 + n;
}

// ---------------------------------------------------------------- reading

/** One decoded TLV within a buffer. */
export interface Node {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the first content byte. */
  contentStart: number;
  /** Offset just past the content. */
  end: number;
}

/** Reads the TLV at `pos` (within `limit`, default the buffer's end). */
export function read(buf: Uint8Array, pos: number, limit = buf.length): Node {
  if (pos + 2 > limit) throw new DerError('truncated DER (header)');
  const tag = buf[pos] ?? 0;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte DER tags are not supported');
  let len = buf[pos + 1] ?? 0;
  let contentStart = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new DerError('unsupported DER length encoding');
    if (contentStart + n > limit) throw new DerError('truncated DER (length)');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[contentStart + i] ?? 0);
    contentStart += n;
  }
  const end = contentStart + len;
  if (end > limit) throw new DerError('truncated DER (content)');
  return { tag, start: pos, contentStart, end };
}

/** The children of a constructed node. */
export function children(buf: Uint8Array, node: Node): Node[] {
  const out: Node[] = [];
  for (let pos = node.contentStart; pos < node.end; ) {
    const child = read(buf, pos, node.end);
    out.push(child);
    pos = child.end;
  }
  return out;
}

/** Reads the TLV at `pos` and checks its tag. */
export function expect(buf: Uint8Array, pos: number, tag: number, what: string, limit?: number): Node {
  const node = read(buf, pos, limit);
  if (node.tag !== tag) throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, found 0x${node.tag.toString(16)}`);
  return node;
}

/** The bytes of a whole node (tag, length and content). */
export function bytesOf(buf: Uint8Array, node: Node): Uint8Array {
  return buf.subarray(node.start, node.end);
}

/** The content bytes of a node. */
export function contentOf(buf: Uint8Array, node: Node): Uint8Array {
  return buf.subarray(node.contentStart, node.end);
}

/** Decodes an OBJECT IDENTIFIER node to dotted form. */
export function readOid(buf: Uint8Array, node: Node): string {
  if (node.tag !== Tag.OID) throw new DerError('expected an OBJECT IDENTIFIER');
  const c = contentOf(buf, node);
  if (c.length === 0) throw new DerError('empty OBJECT IDENTIFIER');
  const arcs: number[] = [];
  let v = 0;
  for (const b of c) {
    v = v * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      arcs.push(v);
      v = 0;
    }
  }
  const first = arcs.shift() ?? 0;
  const head = first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80];
  return [...head, ...arcs].join('.');
}
