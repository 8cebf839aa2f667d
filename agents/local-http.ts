/**
 * A minimal HTTP/1.1 client for the agent's calls to local admin endpoints (Envoy's admin API,
 * ztunnel's readiness port), on `node:http`.
 *
 * The agent does not use the global `fetch` for these: `fetch` loads undici, a large module, and
 * undici parses HTTP with a WebAssembly build of llhttp, which does not exist when Node.js runs
 * with `--jitless` (a memory setting for the agent binary, issue 9). `node:http` has neither cost.
 */
import http from 'node:http';

/** The answer to {@link localHttpRequest}: status code and the whole body as UTF-8 text. */
export interface LocalHttpResponse {
  status: number;
  body: string;
}

/**
 * Sends one request to an `http://` URL (no redirects, no TLS) and reads the whole answer.
 * `timeoutMs` bounds the entire exchange (connect, send, receive). Rejects on a connection error,
 * on the timeout (`Error('… timed out after <ms> ms')`), or for a URL that is not `http:`.
 */
export function localHttpRequest(url: string, opts: { method?: string; timeoutMs: number }): Promise<LocalHttpResponse> {
  const target = new URL(url);
  if (target.protocol !== 'http:') return Promise.reject(new Error(`localHttpRequest: only http: URLs, got ${target.protocol}`));
  return new Promise((resolve, reject) => {
    const req = http.request(target, { method: opts.method ?? 'GET', agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
      });
    });
    const timer = setTimeout(() => req.destroy(new Error(`${opts.method ?? 'GET'} ${url} timed out after ${opts.timeoutMs} ms`)), opts.timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end();
  });
}
