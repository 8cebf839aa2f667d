/**
 * The workload's X.509-SVID lifecycle (SPIFFE X.509-SVID spec; DESIGN.md §4, §8):
 *
 * - first issue: a fresh ECDSA P-256 key and a PKCS#10 CSR (empty subject, one critical URI SAN =
 *   the workload's SPIFFE ID), sent to the control plane's CA with the bootstrap token
 *   (`authorization: Bearer <token>`);
 * - persistence: key and chain in `<stateDir>/svid.pem` (mode 0600, written atomically), reused on
 *   restart while still valid, so a reboot needs no new token;
 * - renewal: at half the lifetime ± 10 % (of the lifetime) jitter, over mTLS with the current SVID
 *   as client certificate, with a new key each time; failures are retried with exponential
 *   back-off and logged louder as expiry approaches.
 *
 * Keys, tokens and certificates are never logged: only serial, SPIFFE ID and NotAfter.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../src/observability/logger.js';
import { CaRequestError, controlPlaneCredentials, createCertificate } from './ca-client.js';
import { splitHostPort } from './config.js';
import { createSvidCsr } from '../src/identity/svid-csr.js';
import { ensurePrivateDir, writeFileAtomic } from './files.js';
import { certUriSans, certificatePems, pemBlocks, serialOf, splitChain } from './pem.js';

/** A workload SVID with its private key and the trust bundle that came with it. */
export interface Svid {
  /** Leaf then intermediates, PEM (what Envoy presents; SDS secret `default`). */
  certChainPem: string;
  /** PKCS#8 PEM private key of the leaf. Never log it. */
  keyPem: string;
  /** Trust bundle (root certificates), PEM (SDS secret `ROOTCA`). */
  rootsPem: string;
  /** The leaf's URI SAN, `spiffe://<td>/ns/<ns>/sa/<sa>`. */
  spiffeId: string;
  notBefore: Date;
  notAfter: Date;
  /** Leaf serial number, lowercase hex. */
  serial: string;
}

/** Options of {@link SvidManager}. */
export interface SvidManagerOptions {
  /** Control plane `host:port` (CA over TLS). */
  controlPlane: string;
  /** PEM trust bundle for the control plane's serving certificate; read at every request. */
  rootCertPath: string;
  /** Accepted URI SAN of the control plane. */
  controlPlaneSpiffeId: string;
  /** The identity this agent holds; the CA must issue exactly this SPIFFE ID. */
  spiffeId: string;
  /** Directory holding `svid.pem` (created 0700). */
  stateDir: string;
  /** Bootstrap token file; needed only when no valid SVID is persisted. */
  tokenPath?: string;
  /** Requested lifetime in seconds (the CA caps it; default: the CA's default). */
  certTtlSeconds?: number;
  logger: Logger;
  /** First retry delay after a failed request (default 1000 ms); doubles up to `retryMaxMs`. */
  retryInitialMs?: number;
  /** Longest retry delay (default 60 000 ms). */
  retryMaxMs?: number;
  /** Deadline of one CreateCertificate call (default 15 000 ms). */
  requestTimeoutMs?: number;
  /** Random source in [0, 1) for jitter (tests may fix it). */
  random?: () => number;
}

/** Thrown when no SVID can be obtained and retrying cannot help (no token, token refused, wrong identity). */
export class SvidError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SvidError';
  }
}

/** Name of the persisted SVID file in the state directory. */
export const SVID_FILE = 'svid.pem';

const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Obtains, persists and renews the workload's SVID. `start()` resolves with the first SVID;
 * `onRotate` listeners run after each renewal. One instance per identity; call `stop()` to end
 * renewals.
 */
export class SvidManager {
  readonly file: string;
  private svid: Svid | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<(svid: Svid) => void>();
  private readonly abort = new AbortController();
  private stopped = false;
  private failures = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly log: Logger;
  private readonly random: () => number;

  constructor(private readonly opts: SvidManagerOptions) {
    this.file = path.join(opts.stateDir, SVID_FILE);
    this.log = opts.logger.child({ component: 'svid' });
    this.random = opts.random ?? Math.random;
  }

  /**
   * Loads a still-valid persisted SVID for this identity, or obtains one with the bootstrap token
   * (retrying while the control plane is unreachable), then schedules renewal. Throws
   * {@link SvidError} when there is no valid SVID and no token, or the CA refuses the token.
   */
  async start(): Promise<Svid> {
    await ensurePrivateDir(this.opts.stateDir);
    const persisted = await this.loadPersisted();
    if (persisted) {
      this.svid = persisted;
      this.log.info({ spiffeId: persisted.spiffeId, serial: persisted.serial, notAfter: persisted.notAfter.toISOString() }, 'reusing persisted SVID');
      this.scheduleRenewal();
      return persisted;
    }
    for (;;) {
      if (this.stopped) throw new SvidError('SVID manager stopped before an SVID was obtained');
      try {
        const svid = await this.serialized(() => this.issue());
        this.failures = 0;
        return svid;
      } catch (err) {
        if (err instanceof SvidError) throw err;
        if (err instanceof CaRequestError && !err.retryable) throw new SvidError(`first SVID refused: ${err.message}`);
        this.failures++;
        const delay = this.backoffMs();
        this.log.warn({ err: errorText(err), retryInMs: delay }, 'cannot obtain the first SVID yet; retrying');
        await this.sleep(delay);
      }
    }
  }

  /** The current SVID. Throws before `start()` has resolved. */
  current(): Svid {
    if (!this.svid) throw new Error('no SVID yet: SvidManager.start() has not completed');
    return this.svid;
  }

  /** Registers a listener called with each new SVID after a renewal; returns an unsubscribe function. */
  onRotate(listener: (svid: Svid) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Renews now (over mTLS while the SVID is valid, else with the token) and reschedules. */
  async renewNow(): Promise<Svid> {
    const svid = await this.serialized(() => this.issue());
    this.failures = 0;
    return svid;
  }

  /** Stops renewals and cancels an in-flight request. The persisted SVID stays on disk. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.abort.abort();
    await this.queue.catch(() => undefined);
  }

  /** Waits `ms`, or less when the manager is stopped. */
  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.abort.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.abort.signal.addEventListener('abort', done, { once: true });
    });
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Gets a new SVID (new key) and installs it. */
  private async issue(): Promise<Svid> {
    const current = this.svid;
    const useSvid = current !== undefined && current.notAfter.getTime() > Date.now();
    const token = useSvid ? undefined : await this.readToken(current);
    // A new ECDSA P-256 key and a CSR with the SPIFFE ID as its only, critical URI SAN (empty
    // subject), built without a certificate library to keep the agent small (src/identity/svid-csr.ts).
    const { keyPem, csrPem } = createSvidCsr(this.opts.spiffeId);
    const rootsPem = await this.readControlPlaneRoots();
    const credentials = controlPlaneCredentials({
      rootsPem,
      host: splitHostPort(this.opts.controlPlane)?.host ?? this.opts.controlPlane,
      controlPlaneSpiffeId: this.opts.controlPlaneSpiffeId,
      ...(useSvid ? { client: { keyPem: current.keyPem, certChainPem: current.certChainPem } } : {}),
    });
    const chain = await createCertificate({
      address: this.opts.controlPlane,
      credentials,
      csrPem,
      ...(this.opts.certTtlSeconds ? { validitySeconds: this.opts.certTtlSeconds } : {}),
      ...(token ? { token } : {}),
      ...(this.opts.requestTimeoutMs ? { timeoutMs: this.opts.requestTimeoutMs } : {}),
      signal: this.abort.signal,
    });
    const pems = certificatePems(chain);
    if (pems.length === 0) throw new CaRequestError('CreateCertificate returned no PEM certificate', undefined, true);
    const svid = buildSvid(keyPem, pems, rootsPem);
    if (svid.spiffeId !== this.opts.spiffeId) {
      throw new CaRequestError(`CA issued a certificate for ${svid.spiffeId}, expected ${this.opts.spiffeId}`, undefined, false);
    }
    await writeFileAtomic(this.file, keyPem + pems.join(''));
    this.svid = svid;
    this.log.info(
      { spiffeId: svid.spiffeId, serial: svid.serial, notAfter: svid.notAfter.toISOString(), via: useSvid ? 'svid' : 'token' },
      current ? 'SVID renewed' : 'SVID issued',
    );
    this.scheduleRenewal();
    if (current) {
      for (const listener of this.listeners) {
        try {
          listener(svid);
        } catch (err) {
          this.log.error({ err: errorText(err) }, 'SVID rotation listener failed');
        }
      }
    }
    return svid;
  }

  private async readToken(current: Svid | undefined): Promise<string> {
    const why = current ? `the SVID expired at ${current.notAfter.toISOString()}` : `no valid SVID in ${this.file}`;
    if (!this.opts.tokenPath) throw new SvidError(`${why} and no bootstrap token is configured (tokenPath)`);
    let token: string;
    try {
      token = (await fs.readFile(this.opts.tokenPath, 'utf8')).trim();
    } catch (err) {
      throw new SvidError(`${why} and the bootstrap token ${this.opts.tokenPath} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    if (!token) throw new SvidError(`${why} and the bootstrap token file ${this.opts.tokenPath} is empty`);
    return token;
  }

  private async readControlPlaneRoots(): Promise<string> {
    let text: string;
    try {
      text = await fs.readFile(this.opts.rootCertPath, 'utf8');
    } catch (err) {
      throw new SvidError(`cannot read the control plane trust bundle ${this.opts.rootCertPath}: ${(err as Error).message}`);
    }
    // A wrong file here would otherwise surface as an endless "self-signed certificate" retry.
    const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
    if (blocks.length === 0) throw new SvidError(`the control plane trust bundle ${this.opts.rootCertPath} holds no PEM certificate`);
    for (const block of blocks) {
      try {
        new crypto.X509Certificate(block);
      } catch (err) {
        throw new SvidError(`the control plane trust bundle ${this.opts.rootCertPath} holds an unreadable certificate: ${(err as Error).message}`);
      }
    }
    return text;
  }

  /** The persisted SVID if it exists, is for this identity, matches its key and has not expired. */
  private async loadPersisted(): Promise<Svid | undefined> {
    let text: string;
    try {
      text = await fs.readFile(this.file, 'utf8');
    } catch {
      return undefined;
    }
    try {
      const blocks = pemBlocks(text);
      const key = blocks.find((b) => b.label === 'PRIVATE KEY');
      const certs = blocks.filter((b) => b.label === 'CERTIFICATE').map((b) => b.pem);
      if (!key || certs.length === 0) throw new Error('missing key or certificate');
      const svid = buildSvid(key.pem, certs, await this.readControlPlaneRoots().catch(() => ''));
      if (svid.spiffeId !== this.opts.spiffeId) {
        this.log.warn({ persisted: svid.spiffeId, expected: this.opts.spiffeId }, 'persisted SVID is for another identity; a new one is needed');
        return undefined;
      }
      if (svid.notAfter.getTime() <= Date.now()) {
        this.log.warn({ spiffeId: svid.spiffeId, serial: svid.serial, notAfter: svid.notAfter.toISOString() }, 'persisted SVID has expired; a new one is needed');
        return undefined;
      }
      return svid;
    } catch (err) {
      this.log.warn({ file: this.file, err: errorText(err) }, 'ignoring unusable persisted SVID');
      return undefined;
    }
  }

  /** Schedules the next renewal at notBefore + lifetime × (0.5 ± 0.1). */
  private scheduleRenewal(): void {
    const svid = this.svid;
    if (!svid || this.stopped) return;
    const start = svid.notBefore.getTime();
    const life = svid.notAfter.getTime() - start;
    const at = start + life * (0.4 + 0.2 * this.random());
    this.setTimerAt(at, () => void this.renewFromTimer());
    this.log.debug({ serial: svid.serial, renewAt: new Date(at).toISOString() }, 'SVID renewal scheduled');
  }

  private async renewFromTimer(): Promise<void> {
    if (this.stopped) return;
    try {
      await this.renewNow();
    } catch (err) {
      if (this.stopped) return;
      this.failures++;
      const svid = this.current();
      const remaining = svid.notAfter.getTime() - Date.now();
      const life = svid.notAfter.getTime() - svid.notBefore.getTime();
      let delay = this.backoffMs();
      if (remaining > 0) delay = Math.min(delay, Math.max(this.opts.retryInitialMs ?? 1000, remaining / 4));
      const fields = { err: errorText(err), spiffeId: svid.spiffeId, serial: svid.serial, notAfter: svid.notAfter.toISOString(), failures: this.failures, retryInMs: Math.round(delay) };
      if (remaining <= 0) this.log.error(fields, 'SVID HAS EXPIRED and renewal keeps failing: mTLS will fail until a new SVID is obtained (a new bootstrap token may be needed)');
      else if (remaining < life / 4) this.log.error({ ...fields, expiresInS: Math.round(remaining / 1000) }, 'SVID renewal failing and the SVID expires soon');
      else this.log.warn(fields, 'SVID renewal failed; retrying');
      this.setTimerAt(Date.now() + delay, () => void this.renewFromTimer());
    }
  }

  private backoffMs(): number {
    const initial = this.opts.retryInitialMs ?? 1000;
    const max = this.opts.retryMaxMs ?? 60_000;
    const base = Math.min(max, initial * 2 ** Math.min(30, Math.max(0, this.failures - 1)));
    return Math.round(base * (0.8 + 0.4 * this.random()));
  }

  /** setTimeout for an absolute time, chained so delays beyond ~24.8 days do not fire at once. */
  private setTimerAt(when: number, fn: () => void): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.stopped) return;
    const delay = Math.max(0, when - Date.now());
    this.timer = delay > MAX_TIMER_MS ? setTimeout(() => this.setTimerAt(when, fn), MAX_TIMER_MS) : setTimeout(fn, delay);
    this.timer.unref();
  }
}

/**
 * Builds an {@link Svid} from a PKCS#8 key and a chain (leaf first, roots last). Checks that the key
 * belongs to the leaf and that the leaf has exactly one `spiffe://` URI SAN. `fallbackRootsPem`
 * is used as the bundle when the chain holds only the leaf.
 */
export function buildSvid(keyPem: string, pems: readonly string[], fallbackRootsPem: string): Svid {
  const leafPem = pems[0];
  if (!leafPem) throw new Error('empty certificate chain');
  const leaf = new crypto.X509Certificate(leafPem);
  if (!leaf.checkPrivateKey(crypto.createPrivateKey(keyPem))) throw new Error('private key does not match the leaf certificate');
  const uris = certUriSans(leaf);
  const spiffe = uris.filter((u) => u.startsWith('spiffe://'));
  if (uris.length !== 1 || spiffe.length !== 1 || !spiffe[0]) throw new Error(`leaf certificate must have exactly one URI SAN, a SPIFFE ID; found ${uris.length}`);
  const { chain, roots } = splitChain(pems);
  return {
    certChainPem: chain.join(''),
    keyPem,
    rootsPem: roots.length ? roots.join('') : fallbackRootsPem,
    spiffeId: spiffe[0],
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
    serial: serialOf(leaf),
  };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
