/**
 * Serving the API app with @hono/node-server: plain HTTP, or HTTPS with the control plane's
 * serving certificate that asks for (but does not require) a client certificate, so admins with
 * bearer tokens and agents with their SVIDs share one port. Client certificates are verified by
 * the app (`auth.ts`), not by OpenSSL, so a bad one gets a clear 401 instead of a TLS alert.
 */
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';

type FetchCallback = Parameters<typeof serve>[0]['fetch'];
import type { Logger } from '../observability/logger.js';

/** TLS material of the HTTPS listener (PEM). */
export interface ApiTlsOptions {
  /** Serving certificate chain, leaf first. */
  certChainPem: string;
  keyPem: string;
  /** Roots that client certificates are offered against (the mesh trust bundle). */
  caPem: string;
}

/** Options of {@link startApiServer}. */
export interface ApiServerOptions {
  /** The app's `fetch` (hono's `app.fetch`); called with node-server's bindings as env. */
  fetch: FetchCallback;
  hostname: string;
  /** 0 = ephemeral. */
  port: number;
  tls?: ApiTlsOptions;
  logger: Logger;
}

/** A listening API server. */
export interface ApiServer {
  /** The bound port. */
  port: number;
  /** `http(s)://host:port`. */
  url: string;
  /** Stops listening and ends open connections (watches included). */
  close(): Promise<void>;
}

/** Binds the API; rejects if the port cannot be bound (e.g. in use). */
export async function startApiServer(opts: ApiServerOptions): Promise<ApiServer> {
  const { fetch } = opts;
  const server: ServerType = opts.tls
    ? serve({
        fetch,
        port: opts.port,
        hostname: opts.hostname,
        createServer: https.createServer,
        serverOptions: { cert: opts.tls.certChainPem, key: opts.tls.keyPem, ca: opts.tls.caPem, requestCert: true, rejectUnauthorized: false },
      })
    : serve({ fetch, port: opts.port, hostname: opts.hostname });
  const port = await new Promise<number>((resolve, reject) => {
    const onError = (err: Error) => reject(new Error(`API (--api-port): cannot listen on ${opts.hostname}:${opts.port}: ${err.message}`));
    server.once('error', onError);
    const ready = () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    };
    if (server.listening) ready();
    else server.once('listening', ready);
  });
  server.on('error', (err) => opts.logger.error({ err }, 'API server error'));
  const host = opts.hostname.includes(':') ? `[${opts.hostname}]` : opts.hostname;
  return {
    port,
    url: `${opts.tls ? 'https' : 'http'}://${host}:${port}`,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      if ('closeAllConnections' in server) server.closeAllConnections();
      await closed;
    },
  };
}
