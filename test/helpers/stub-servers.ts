/**
 * Small HTTP servers that security end-to-end tests run on the host's lab-bridge address:
 * an external authorizer for CUSTOM policies (Envoy `ext_authz` HTTP service: a 2xx answer allows
 * the request, any other status is returned to the client) and a JWKS endpoint for
 * RequestAuthentication `jwksUri`.
 */
import http from 'node:http';

/** A listening stub; `close()` stops it. */
export interface StubServer {
  port: number;
  /** Requests seen so far (method, path, headers). */
  seen: { method: string; path: string; headers: http.IncomingHttpHeaders }[];
  close(): Promise<void>;
}

function listen(host: string, handler: http.RequestListener, seen: StubServer['seen']): Promise<StubServer> {
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers });
    handler(req, res);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      const addr = server.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      resolve({
        port,
        seen,
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}

/** The header the stub authorizer decides on, and the value that allows. */
export const EXT_AUTHZ_HEADER = 'x-ext-authz';
export const EXT_AUTHZ_ALLOW = 'allow';

/**
 * An HTTP external authorizer: 200 when the check request carries `x-ext-authz: allow`, else 403
 * with body `denied by ext-authz`.
 */
export function startExtAuthzStub(host: string): Promise<StubServer> {
  return listen(
    host,
    (req, res) => {
      req.resume();
      if (req.headers[EXT_AUTHZ_HEADER] === EXT_AUTHZ_ALLOW) {
        res.writeHead(200).end();
      } else {
        res.writeHead(403, { 'content-type': 'text/plain' }).end('denied by ext-authz');
      }
    },
    [],
  );
}

/** Serves `jwks` (a JSON string) at every path with `content-type: application/json`. */
export function startJwksStub(host: string, jwks: string): Promise<StubServer> {
  return listen(
    host,
    (req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' }).end(jwks);
    },
    [],
  );
}
