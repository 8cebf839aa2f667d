/**
 * Key handling for the CA: importing the CA's PEM private key in any of the usual encodings
 * (PKCS#8, SEC1 `EC PRIVATE KEY`, PKCS#1 `RSA PRIVATE KEY`, as Istio's `ca-key.pem` may hold) with
 * the matching X.509 signature algorithm, and checking the public keys CSRs carry.
 */
import crypto from 'node:crypto';
import { CaError } from './errors.js';
import { algorithmIdentifierFor, oidIs, sha1, view, type DerSigner } from './x509-der.js';
import { DerError, Tag, children, contentOf, expect, oid, read, readOid, type Node } from './der.js';
import { nativeEcdsa } from './native.js';

const subtle = crypto.webcrypto.subtle;

/** The CA's signing key. */
export interface SigningKey {
  /** The public key, SubjectPublicKeyInfo DER (to check it matches `ca-cert.pem`). */
  spki: Buffer;
  /** Short description for logs, e.g. `ECDSA P-256`. */
  description: string;
  /** The key and signature algorithm for `node:crypto` signing of DER certificates. */
  der: DerSigner;
}

/** Node curve name → hash used with it (RFC 5758 §3.2 pairs P-256/SHA-256, P-384/SHA-384). */
const CURVES: Record<string, { name: string; hash: string }> = {
  prime256v1: { name: 'P-256', hash: 'sha256' },
  secp384r1: { name: 'P-384', hash: 'sha384' },
  secp521r1: { name: 'P-521', hash: 'sha512' },
};

/**
 * Imports a PEM private key (PKCS#8, SEC1 or PKCS#1) for signing certificates: ECDSA on P-256,
 * P-384 or P-521 (ecdsa-with-SHA256/384/512), or RSA of 2048 bits or more
 * (sha256WithRSAEncryption). Throws {@link CaError} `ca-config` for anything else; `source` names
 * the file in the message.
 */
export function importSigningKey(pem: string | Buffer, source: string): SigningKey {
  let ko: crypto.KeyObject;
  try {
    ko = crypto.createPrivateKey(pem);
  } catch {
    throw new CaError('ca-config', `${source}: not a PEM private key`);
  }
  const spki = crypto.createPublicKey(ko).export({ format: 'der', type: 'spki' });
  if (ko.asymmetricKeyType === 'ec') {
    const curve = CURVES[ko.asymmetricKeyDetails?.namedCurve ?? ''];
    if (!curve) throw new CaError('ca-config', `${source}: EC curve ${ko.asymmetricKeyDetails?.namedCurve ?? '?'} not supported (P-256, P-384, P-521)`);
    const der = { key: ko, hash: curve.hash, algorithmIdentifier: algorithmIdentifierFor('ecdsa', curve.hash) };
    return { spki, description: `ECDSA ${curve.name}`, der };
  }
  if (ko.asymmetricKeyType === 'rsa') {
    const bits = ko.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) throw new CaError('ca-config', `${source}: RSA key of ${bits} bits is too small (2048 or more)`);
    const der = { key: ko, hash: 'sha256', algorithmIdentifier: algorithmIdentifierFor('rsa', 'sha256') };
    return { spki, description: `RSA ${bits}`, der };
  }
  throw new CaError('ca-config', `${source}: key type ${ko.asymmetricKeyType ?? '?'} not supported (ECDSA or RSA)`);
}

/** A CSR key accepted by {@link checkCsrKey}. */
export interface CsrKeyInfo {
  kind: 'ecdsa' | 'rsa';
  /** `P-256`/`P-384` for ECDSA, modulus bits for RSA. */
  detail: string;
  /**
   * Verifies `signature` over `data` with this key and `hash` (`sha256`, `sha384`, `sha512`):
   * ECDSA with a DER `ECDSA-Sig-Value`, or RSA PKCS#1 v1.5. False when it does not verify or
   * is malformed; never throws.
   */
  verify(hash: string, data: Uint8Array, signature: Uint8Array): boolean;
  /** RFC 5280 §4.2.1.2 method 1 key identifier (SHA-1 of the subjectPublicKey bits). */
  keyId: Buffer;
}

const KEY_OIDS = {
  ecPublicKey: '1.2.840.10045.2.1',
  rsaEncryption: '1.2.840.113549.1.1.1',
  p256: '1.2.840.10045.3.1.7',
  p384: '1.3.132.0.34',
} as const;

const KEY_NAMES: Record<string, string> = {
  '1.3.101.112': 'Ed25519',
  '1.3.101.113': 'Ed448',
  '1.2.840.113549.1.1.10': 'RSA-PSS',
  '1.2.840.10040.4.1': 'DSA',
};

function b64u(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

function stripZeros(bytes: Uint8Array): Uint8Array {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  return bytes.subarray(i);
}

/** OID content octets compared byte for byte on the hot path (no dotted string is built). */
const KEY_OID_BYTES = {
  ecPublicKey: oidContent(KEY_OIDS.ecPublicKey),
  rsaEncryption: oidContent(KEY_OIDS.rsaEncryption),
  p256: oidContent(KEY_OIDS.p256),
  p384: oidContent(KEY_OIDS.p384),
};

function oidContent(dotted: string): Buffer {
  return oid(dotted).subarray(2); // short OIDs: one tag byte, one length byte
}

/** `CsrKeyInfo.verify` through `node:crypto` with an imported key. */
function verifierOf(publicKey: crypto.KeyObject): CsrKeyInfo['verify'] {
  return (hash, data, signature) => {
    try {
      return crypto.verify(hash, data, publicKey, signature);
    } catch {
      return false;
    }
  };
}

/** WebCrypto import parameters per accepted curve, built once (WebCrypto copies what it needs). */
const EC_IMPORT: Record<'P-256' | 'P-384', EcKeyImportParams> = {
  'P-256': { name: 'ECDSA', namedCurve: 'P-256' },
  'P-384': { name: 'ECDSA', namedCurve: 'P-384' },
};
const VERIFY_USAGE: KeyUsage[] = ['verify'];

/**
 * Checks the SubjectPublicKeyInfo (DER) of a CSR: ECDSA P-256 or P-384, or RSA with a modulus of
 * 2048 to 8192 bits (DESIGN.md §4), and returns what verifying with it needs. The SPKI is read
 * here. An uncompressed EC point (SEC 1 §2.3.4) goes to the native verifier when it is built
 * (`native.ts`: the point is decoded and checked to lie on the curve, and each verification
 * reuses one OpenSSL key per curve); otherwise, and for compressed points, it is imported in
 * WebCrypto's `raw` format, which measured cheapest of Node 20's public routes (per key, CPU:
 * `raw` ~68 µs, JWK ~75 µs plus ~20 µs more on its first verification, SPKI DER ~115 µs,
 * WebCrypto `spki` ~165 µs; a P-256 verification is ~73 µs, see `bench/ca.ts`). An RSA key is
 * imported as a JWK. Throws {@link CaError} `unsupported-key` for another key type or size,
 * `bad-csr` if malformed (including an EC point not on the curve).
 */
export async function checkCsrKey(spki: Uint8Array): Promise<CsrKeyInfo> {
  let oidNode: Node;
  let params: Node | undefined;
  let keyBits: Uint8Array;
  try {
    // SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey BIT STRING }
    const top = expect(spki, 0, Tag.SEQUENCE, 'SubjectPublicKeyInfo');
    if (top.end !== spki.length) throw new DerError('trailing bytes after SubjectPublicKeyInfo');
    const algNode = top.contentStart < top.end ? read(spki, top.contentStart, top.end) : undefined;
    const bitsNode = algNode && algNode.end < top.end ? read(spki, algNode.end, top.end) : undefined;
    if (!algNode || algNode.tag !== Tag.SEQUENCE || !bitsNode || bitsNode.tag !== Tag.BIT_STRING) throw new DerError('SubjectPublicKeyInfo elements');
    const [first, second] = children(spki, algNode);
    if (!first) throw new DerError('empty AlgorithmIdentifier');
    if (first.tag !== Tag.OID) throw new DerError('expected an OBJECT IDENTIFIER');
    oidNode = first;
    params = second;
    if (spki[bitsNode.contentStart] !== 0 || bitsNode.contentStart >= bitsNode.end) throw new DerError('public key BIT STRING has unused bits');
    keyBits = view(spki, bitsNode.contentStart + 1, bitsNode.end);
  } catch (err) {
    if (err instanceof DerError) throw new CaError('bad-csr', `CSR public key is malformed: ${err.message}`);
    throw err;
  }
  try {
    if (oidIs(spki, oidNode, KEY_OID_BYTES.ecPublicKey)) {
      const curve = params && oidIs(spki, params, KEY_OID_BYTES.p256) ? 'P-256' : params && oidIs(spki, params, KEY_OID_BYTES.p384) ? 'P-384' : undefined;
      if (!curve) {
        const named = params?.tag === Tag.OID ? readOid(spki, params) : undefined;
        throw new CaError('unsupported-key', `CSR key on curve ${named ?? '?'} is not accepted (ECDSA P-256 or P-384, or RSA 2048+)`);
      }
      const native = keyBits[0] === 0x04 ? nativeEcdsa() : undefined;
      if (native) {
        const curveId = curve === 'P-256' ? 0 : 1;
        if (native.checkPoint(curveId, keyBits) !== 1) throw new CaError('bad-csr', `CSR public key is malformed: not a point on ${curve}`);
        const point = keyBits;
        return { kind: 'ecdsa', detail: curve, keyId: sha1(keyBits), verify: (hash, data, signature) => native.verify(curveId, point, crypto.createHash(hash).update(data).digest(), signature) === 1 };
      }
      const imported = subtle.importKey('raw', keyBits, EC_IMPORT[curve], true, VERIFY_USAGE);
      const keyId = sha1(keyBits); // while WebCrypto's import is under way
      return { kind: 'ecdsa', detail: curve, verify: verifierOf(crypto.KeyObject.from(await imported)), keyId };
    }
    if (oidIs(spki, oidNode, KEY_OID_BYTES.rsaEncryption)) {
      const seqNode = expect(keyBits, 0, Tag.SEQUENCE, 'RSAPublicKey');
      const [nNode, eNode] = children(keyBits, seqNode);
      if (!nNode || nNode.tag !== Tag.INTEGER || !eNode || eNode.tag !== Tag.INTEGER) throw new DerError('RSAPublicKey must be two INTEGERs');
      const n = stripZeros(contentOf(keyBits, nNode));
      const bitLength = n.length * 8 - Math.clz32(n[0] ?? 0) + 24;
      if (bitLength < 2048 || bitLength > 8192) throw new CaError('unsupported-key', `CSR RSA key of ${bitLength} bits is not accepted (2048 to 8192)`);
      const publicKey = crypto.createPublicKey({ key: { kty: 'RSA', n: b64u(n), e: b64u(stripZeros(contentOf(keyBits, eNode))) }, format: 'jwk' });
      return { kind: 'rsa', detail: String(bitLength), verify: verifierOf(publicKey), keyId: sha1(keyBits) };
    }
  } catch (err) {
    if (err instanceof CaError) throw err;
    throw new CaError('bad-csr', `CSR public key is malformed: ${(err as Error).message}`);
  }
  const algOid = readOid(spki, oidNode);
  throw new CaError('unsupported-key', `CSR key type ${KEY_NAMES[algOid] ?? algOid} is not accepted (ECDSA P-256 or P-384, or RSA 2048+)`);
}

/** Generates an ECDSA P-256 key pair; returns the private key as PKCS#8 PEM and the SPKI DER. */
export function generateP256(): { keyPem: string; spki: Buffer } {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    keyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    spki: publicKey.export({ format: 'der', type: 'spki' }),
  };
}
