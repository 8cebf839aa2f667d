/**
 * The monitoring endpoint (DESIGN.md §5, port 15014): `/metrics` (Prometheus text format),
 * `/healthz` (the process is up), `/readyz` (the control plane can serve: config loaded, CA
 * ready, gRPC listening; 503 with the failing checks otherwise) and `/debug/*` JSON views.
 *
 * The app is a hono factory: callers pass read-only providers, so this module imports no stage.
 */
import { Hono } from 'hono';
import type { Registry } from 'prom-client';

/** A named readiness check; `ok: false` makes `/readyz` answer 503. */
export interface ReadinessCheck {
  name: string;
  check: () => { ok: boolean; detail?: string };
}

/** Inputs of {@link createMonitoringApp}. `debug` maps a path segment to a JSON provider. */
export interface MonitoringOptions {
  metrics: Registry;
  readiness: readonly ReadinessCheck[];
  debug?: Readonly<Record<string, (query: Record<string, string>) => unknown>>;
}

/** Builds the hono app serving `/metrics`, `/healthz`, `/readyz` and `/debug/<name>`. */
export function createMonitoringApp(opts: MonitoringOptions): Hono {
  const app = new Hono();
  app.get('/healthz', (c) => c.text('ok\n'));
  app.get('/readyz', (c) => {
    const results = opts.readiness.map((r) => ({ name: r.name, ...r.check() }));
    const ready = results.every((r) => r.ok);
    return c.json({ ready, checks: results }, ready ? 200 : 503);
  });
  app.get('/metrics', async (c) => {
    const body = await opts.metrics.metrics();
    return c.body(body, 200, { 'content-type': opts.metrics.contentType });
  });
  app.get('/debug/:name', (c) => {
    const provider = opts.debug?.[c.req.param('name')];
    if (!provider) {
      return c.json({ type: 'about:blank', title: 'Not Found', status: 404, detail: `no debug view ${c.req.param('name')}` }, 404, {
        'content-type': 'application/problem+json',
      });
    }
    return c.json(provider(c.req.query()));
  });
  return app;
}
