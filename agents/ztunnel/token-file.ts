/**
 * Keeps ztunnel's AUTH_TOKEN file fresh (issue 6 §3). ztunnel reads the file for every xDS stream
 * and every CreateCertificate call for as long as it runs, so the file must always hold a token
 * the control plane accepts. The agent asks `skiff.session.v1.SessionTokens/CreateSessionToken`
 * over mTLS with its current SVID for a short-lived session token of the same identity and
 * rewrites the file (atomically, mode 0600) at half of the token's lifetime; a failed request is
 * retried with exponential back-off (1 s doubling, at most 30 s) while the old token is still
 * good. The bootstrap token is never written there.
 */
import fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../src/observability/logger.js';
import { CREATE_SESSION_TOKEN_PATH, decodeSessionToken, encodeCreateSessionTokenRequest, type SessionTokenMessage } from '../../src/xds/protos/skiff/session.js';
import { channelOptionsFor, controlPlaneCredentials } from '../ca-client.js';
import { splitHostPort } from '../config.js';
import { writeFileAtomic } from '../files.js';
import type { Svid } from '../svid.js';

/** Options of {@link SessionTokenFile}. */
export interface SessionTokenFileOptions {
  /** Control plane `host:port` (TLS gRPC). */
  controlPlane: string;
  /** PEM bundle verifying the control plane; read at every request. */
  rootCertPath: string;
  controlPlaneSpiffeId: string;
  /** The agent's current SVID (its client certificate). */
  svid: () => Svid;
  /** The token file ztunnel reads (AUTH_TOKEN). */
  tokenPath: string;
  /** Requested lifetime, seconds (the control plane caps it). */
  ttlSeconds: number;
  logger: Logger;
  /** First retry delay (default 1000 ms), doubled up to `retryMaxMs` (default 30 000 ms). */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** Deadline of one request (default 15 000 ms). */
  requestTimeoutMs?: number;
}

/** A session token as the file holds it, without the secret. */
export interface SessionTokenInfo {
  spiffeId: string;
  expiresAt: Date;
  /** When it was written to the file. */
  writtenAt: Date;
}

/** Asks the control plane for a session token once (mTLS with `svid`). Rejects with the gRPC error. */
export async function requestSessionToken(opts: Pick<SessionTokenFileOptions, 'controlPlane' | 'rootCertPath' | 'controlPlaneSpiffeId' | 'ttlSeconds' | 'requestTimeoutMs'> & { svid: Svid }): Promise<SessionTokenMessage> {
  const host = splitHostPort(opts.controlPlane)?.host;
  const credentials = controlPlaneCredentials({
    rootsPem: fs.readFileSync(opts.rootCertPath, 'utf8'),
    controlPlaneSpiffeId: opts.controlPlaneSpiffeId,
    client: { keyPem: opts.svid.keyPem, certChainPem: opts.svid.certChainPem },
    ...(host ? { host } : {}),
  });
  const client = new grpc.Client(opts.controlPlane, credentials, { 'grpc.use_local_subchannel_pool': 1, ...channelOptionsFor(opts.controlPlane) });
  try {
    return await new Promise<SessionTokenMessage>((resolve, reject) => {
      client.makeUnaryRequest(
        CREATE_SESSION_TOKEN_PATH,
        encodeCreateSessionTokenRequest,
        decodeSessionToken,
        { ttlSeconds: opts.ttlSeconds },
        new grpc.Metadata(),
        { deadline: Date.now() + (opts.requestTimeoutMs ?? 15_000) },
        (err, value) => {
          if (err) reject(new Error(`CreateSessionToken failed: ${grpc.status[err.code] ?? err.code}: ${err.details}`));
          else if (!value?.token) reject(new Error('CreateSessionToken returned no token'));
          else resolve(value);
        },
      );
    });
  } finally {
    client.close();
  }
}

/** Writes and renews the session-token file. `start()` once, `stop()` once. */
export class SessionTokenFile {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private info: SessionTokenInfo | undefined;
  private writes = 0;
  private retryMs: number;
  private readonly log: Logger;

  constructor(private readonly opts: SessionTokenFileOptions) {
    this.retryMs = opts.retryInitialMs ?? 1000;
    this.log = opts.logger.child({ component: 'session-token' });
  }

  /** The token currently in the file (no secret), undefined before the first write. */
  current(): SessionTokenInfo | undefined {
    return this.info;
  }

  /** How many tokens were written so far. */
  get written(): number {
    return this.writes;
  }

  /**
   * Obtains the first token and writes the file, then keeps renewing it. Rejects when the first
   * request fails (the agent's start fails with that message).
   */
  async start(): Promise<void> {
    await this.refresh();
  }

  /** Stops renewing (the file stays; its token expires on its own). */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async refresh(): Promise<void> {
    const token = await requestSessionToken({ ...this.opts, svid: this.opts.svid() });
    if (this.stopped) return;
    await writeFileAtomic(this.opts.tokenPath, token.token);
    this.writes++;
    const expiresAt = new Date(token.expiresAtUnixSeconds * 1000);
    this.info = { spiffeId: token.spiffeId, expiresAt, writtenAt: new Date() };
    this.retryMs = this.opts.retryInitialMs ?? 1000;
    const inMs = Math.max(1000, (expiresAt.getTime() - Date.now()) / 2);
    this.log.info({ spiffeId: token.spiffeId, file: this.opts.tokenPath, expiresAt: expiresAt.toISOString(), renewInMs: Math.round(inMs) }, 'wrote ztunnel session token');
    this.schedule(inMs);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.refresh().catch((err: unknown) => {
        const left = (this.info?.expiresAt.getTime() ?? 0) - Date.now();
        const delay = Math.min(this.retryMs, Math.max(1000, left / 4));
        this.retryMs = Math.min(this.opts.retryMaxMs ?? 30_000, this.retryMs * 2);
        (left > 0 ? this.log.warn.bind(this.log) : this.log.error.bind(this.log))({ err: (err as Error).message, tokenLeftMs: Math.round(left), retryInMs: Math.round(delay) }, 'renewing the ztunnel session token failed; retrying');
        this.schedule(delay);
      });
    }, ms);
    this.timer.unref?.();
  }
}
