/**
 * IP addresses and CIDRs as ztunnel's APIs carry them: raw network-order bytes, 4 for IPv4 and
 * 16 for IPv6 (`istio.workload.Workload.addresses`, `NetworkAddress.address`,
 * `istio.security.Address`), never text.
 */
import net from 'node:net';

/** An IP as raw bytes and its family's full prefix length. */
export interface RawIp {
  bytes: Uint8Array;
  /** 32 or 128. */
  bits: number;
}

/** A parsed CIDR (or single IP: `length` = `bits`). */
export interface RawCidr extends RawIp {
  length: number;
}

/** The raw bytes of an IPv4 or IPv6 literal (zone ids refused), or undefined when `text` is not one. */
export function ipBytes(text: string): RawIp | undefined {
  if (net.isIPv4(text)) return { bytes: Uint8Array.from(text.split('.').map(Number)), bits: 32 };
  if (!net.isIPv6(text) || text.includes('%')) return undefined;
  // Expand an embedded IPv4 tail (::ffff:1.2.3.4) into two hextets first.
  let s = text;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4?.[1]) {
    const p = v4[1].split('.').map(Number) as [number, number, number, number];
    s = `${s.slice(0, -v4[1].length)}${((p[0] << 8) | p[1]).toString(16)}:${((p[2] << 8) | p[3]).toString(16)}`;
  }
  const [head = '', tail] = s.split('::') as [string, string | undefined];
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const fill = tail === undefined ? 0 : 8 - left.length - right.length;
  const hextets = [...left, ...new Array<string>(fill).fill('0'), ...right].map((h) => parseInt(h, 16));
  if (hextets.length !== 8 || hextets.some((h) => !Number.isInteger(h) || h < 0 || h > 0xffff)) return undefined;
  const bytes = new Uint8Array(16);
  hextets.forEach((h, i) => {
    bytes[2 * i] = h >> 8;
    bytes[2 * i + 1] = h & 0xff;
  });
  return { bytes, bits: 128 };
}

/** `1.2.3.0/24`, `fd00::/8` or a single IP; undefined when malformed or the length is out of range. */
export function parseCidr(text: string): RawCidr | undefined {
  const slash = text.indexOf('/');
  const ip = ipBytes(slash < 0 ? text : text.slice(0, slash));
  if (!ip) return undefined;
  if (slash < 0) return { ...ip, length: ip.bits };
  const lenText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lenText)) return undefined;
  const length = Number(lenText);
  return length <= ip.bits ? { ...ip, length } : undefined;
}

/** The text form of raw IP bytes (4 or 16), as Node prints it; undefined for other lengths. */
export function ipText(bytes: Uint8Array): string | undefined {
  if (bytes.length === 4) return [...bytes].join('.');
  if (bytes.length !== 16) return undefined;
  const hextets: string[] = [];
  for (let i = 0; i < 16; i += 2) hextets.push((((bytes[i] as number) << 8) | (bytes[i + 1] as number)).toString(16));
  // Compress the longest run of zeros (RFC 5952).
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (hextets[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && hextets[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return hextets.join(':');
  return `${hextets.slice(0, best).join(':')}::${hextets.slice(best + bestLen).join(':')}`;
}
