/**
 * The CA's optional native ECDSA verifier (`src/ca/native/ecdsa-verify.c`, built by
 * `scripts/build-native.mjs` into `dist/native/skiff_ecdsa.node`).
 *
 * A CA sees every CSR key once, so what a CSR check costs is importing the key plus verifying.
 * On Node 20 / OpenSSL 3.0 the import alone (cheapest route: WebCrypto `raw`) costs about as much
 * as the verification, because it builds a new EC group and runs a full public-key check each
 * time. The addon verifies with the OpenSSL inside Node, reusing one EC key per curve, so the
 * import is nearly free (`bench/ca.ts` measures both routes). Same acceptance rules as
 * `crypto.verify`: strict DER signatures, points on the curve.
 *
 * Loading is lazy and never throws: a missing, unloadable or misbehaving addon (it must pass a
 * self-test with a fresh key: a good signature verifies, a tampered one does not, an off-curve
 * point is refused) leaves {@link nativeEcdsa} returning undefined, and the CA uses WebCrypto.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The addon's functions; `curve` is 0 for P-256 and 1 for P-384 (see the C file's header). */
export interface NativeEcdsa {
  /**
   * Verifies a DER `ECDSA-Sig-Value` over `digest` (already hashed with the CSR's signature hash)
   * with the uncompressed SEC 1 point `point`: 1 verifies, 0 does not (or malformed), -1 the
   * point is not a public key on `curve`.
   */
  verify(curve: 0 | 1, point: Uint8Array, digest: Uint8Array, signature: Uint8Array): number;
  /** 1 if `point` (uncompressed SEC 1) is a public key on `curve`, else -1. */
  checkPoint(curve: 0 | 1, point: Uint8Array): number;
}

/** File name of the built addon, under `dist/native/` of the package root. */
export const NATIVE_ECDSA_FILE = 'skiff_ecdsa.node';

let loaded: NativeEcdsa | null | undefined;
let disabled = process.env['SKIFF_NATIVE_ECDSA'] === '0';
let loadError: string | undefined;

/**
 * `dist/native/skiff_ecdsa.node` of this module's package: the nearest directory above it that
 * holds a `package.json` (from `src/ca/` or `dist/src/ca/`, the repository or the installed package;
 * the search stops there, so it never picks up another package's file).
 */
function addonPath(): string | undefined {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) {
      const candidate = path.join(dir, 'dist', 'native', NATIVE_ECDSA_FILE);
      return fs.existsSync(candidate) ? candidate : undefined;
    }
    const up = path.dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/** The addon must agree with `node:crypto` on fresh P-256 and P-384 keys before the CA relies on it. */
function selfTest(addon: NativeEcdsa): boolean {
  const data = Buffer.from('skiff native ECDSA self-test');
  for (const [curveId, namedCurve, hash, length] of [
    [0, 'P-256', 'sha256', 65],
    [1, 'P-384', 'sha384', 97],
  ] as const) {
    const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve });
    const spki = publicKey.export({ format: 'der', type: 'spki' });
    const point = spki.subarray(spki.length - length);
    const signature = crypto.sign(hash, data, privateKey);
    const digest = crypto.createHash(hash).update(data).digest();
    const tampered = Buffer.from(signature);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 1;
    const offCurve = Buffer.from(point);
    offCurve[length - 1] = (offCurve[length - 1] ?? 0) ^ 1;
    const ok = addon.verify(curveId, point, digest, signature) === 1 && addon.verify(curveId, point, digest, tampered) === 0 && addon.checkPoint(curveId, offCurve) === -1 && addon.checkPoint(curveId, point) === 1;
    if (!ok) return false;
  }
  return true;
}

/**
 * The native verifier, loaded and self-tested on first call; undefined when it is not built,
 * cannot be loaded, fails its self-test, is switched off with `SKIFF_NATIVE_ECDSA=0`, or
 * {@link setNativeEcdsaEnabled}`(false)` was called, and in FIPS mode (`crypto.getFips()`: the
 * addon calls OpenSSL's EC functions directly, outside its FIPS provider). Never throws.
 */
export function nativeEcdsa(): NativeEcdsa | undefined {
  if (disabled) return undefined;
  if (loaded === undefined) {
    loaded = null;
    try {
      const file = addonPath();
      if (crypto.getFips()) {
        loadError = 'FIPS mode: CSRs are verified through the FIPS provider';
      } else if (!file) {
        loadError = `${NATIVE_ECDSA_FILE} not built (node scripts/build-native.mjs)`;
      } else {
        const addon = createRequire(import.meta.url)(file) as NativeEcdsa;
        if (typeof addon.verify === 'function' && typeof addon.checkPoint === 'function' && selfTest(addon)) loaded = addon;
        else loadError = `${file} failed its self-test`;
      }
    } catch (err) {
      loadError = (err as Error).message;
    }
  }
  return loaded ?? undefined;
}

/** Why {@link nativeEcdsa} returns undefined (after it was called), for a start-up log line. */
export function nativeEcdsaStatus(): { active: boolean; reason?: string } {
  const active = nativeEcdsa() !== undefined;
  if (active) return { active };
  return { active, reason: disabled ? 'switched off' : (loadError ?? 'not loaded') };
}

/**
 * Switches the native verifier on (the default, when it loads) or off for this process, so
 * benchmarks and tests can run the WebCrypto route side by side; returns whether it was on before,
 * so a caller can put back what it found (`SKIFF_NATIVE_ECDSA=0` starts it off). Takes effect for
 * CSR keys checked after the call.
 */
export function setNativeEcdsaEnabled(enabled: boolean): boolean {
  const was = !disabled;
  disabled = !enabled;
  return was;
}
