/**
 * `GET /v1/watch`: resource changes as server-sent events (the HTML Living Standard's
 * `text/event-stream`), Kubernetes watch semantics:
 *
 * - `?resourceVersion=N` (or the `Last-Event-ID` header of a reconnecting EventSource): every
 *   change after revision N. If the store compacted those events away, 410 Gone (list again).
 * - Without it: every current object as `ADDED`, then one `BOOKMARK` carrying the revision they
 *   were read at, then changes.
 *
 * Each event is `event: ADDED|MODIFIED|DELETED|BOOKMARK`, `id: <revision>` and `data:` one JSON
 * object `{type, object}` (`DELETED` carries the last state). Objects of one transaction share a
 * revision. `?kind=` and `?namespace=` filter; a namespace-scoped token sees only its namespaces.
 * A comment line is sent every `watchHeartbeatMs` so proxies keep the connection open.
 */
import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import { streamSSE } from 'hono/streaming';
import type { MeshResource } from '../resources/types.js';
import type { ResourceEvent } from '../store/types.js';
import { visibleNamespaces, type ApiEnv } from './auth.js';
import type { ApiDeps } from './deps.js';
import { notFound } from './errors.js';
import { resolveKind } from './kinds.js';
import { problems, SECURITY } from './openapi-common.js';
import { wireForm } from './resource-body.js';
import { WatchQuerySchema } from './schemas.js';

const watchRoute = createRoute({
  method: 'get',
  path: '/v1/watch',
  tags: ['resources'],
  summary: 'Stream resource changes (server-sent events) from a resourceVersion',
  security: SECURITY,
  request: { query: WatchQuerySchema },
  responses: {
    200: {
      description: 'an event stream: event ADDED|MODIFIED|DELETED|BOOKMARK, id the revision, data {"type", "object"}',
      content: { 'text/event-stream': { schema: { type: 'string' as const } } },
    },
    ...problems(400, 401, 403, 404, 410),
  },
});

interface Outgoing {
  type: ResourceEvent['type'];
  revision: number;
  object: MeshResource;
}

/** Registers `GET /v1/watch` on `app`. */
export function registerWatchRoute(app: OpenAPIHono<ApiEnv>, deps: ApiDeps): void {
  const { store } = deps;
  const heartbeatMs = deps.watchHeartbeatMs ?? 15_000;

  app.openapi(watchRoute, async (c) => {
    const q = c.req.valid('query');
    const namespaces = visibleNamespaces(c.get('principal'), q.namespace);
    const kind = q.kind !== undefined ? resolveKind(q.kind) : undefined;
    if (q.kind !== undefined && kind === undefined) throw notFound(`unknown kind "${q.kind}"`);
    const lastEventId = c.req.header('last-event-id');
    const from = q.resourceVersion ?? (lastEventId !== undefined && /^\d+$/.test(lastEventId) ? lastEventId : undefined);
    const visible = (r: MeshResource) => (kind === undefined || r.kind === kind) && (namespaces === undefined || namespaces.includes(r.metadata.namespace));

    // Subscribe before reading, so no change falls between the read and the follow.
    const queue: ResourceEvent[] = [];
    let wake: (() => void) | undefined;
    const unsubscribe = store.resources.subscribe((events) => {
      queue.push(...events);
      wake?.();
    });
    let initial: Outgoing[];
    let sent: number;
    try {
      if (from !== undefined) {
        const since = await store.resources.eventsSince(Number(from));
        initial = since.events;
        // A resourceVersion ahead of the store (another replica's, or a typo) delivers nothing up to it.
        sent = Math.max(since.revision, Number(from));
      } else {
        const list = await store.resources.list({ ...(kind ? { kind } : {}), ...(namespaces ? { namespaces } : {}) });
        initial = list.items.map((object) => ({ type: 'ADDED', revision: Number(object.metadata.resourceVersion), object }));
        sent = list.revision;
      }
    } catch (err) {
      unsubscribe();
      throw err;
    }

    return streamSSE(c, async (stream) => {
      let closed = false;
      stream.onAbort(() => {
        closed = true;
        wake?.();
      });
      const send = (e: Outgoing) => stream.writeSSE({ event: e.type, id: String(e.revision), data: JSON.stringify({ type: e.type, object: wireForm(e.object) }) });
      const heartbeat = setInterval(() => {
        stream.write(': keep-alive\n\n').catch(() => undefined);
      }, heartbeatMs);
      try {
        for (const e of initial) if (visible(e.object)) await send(e);
        if (from === undefined) {
          await stream.writeSSE({ event: 'BOOKMARK', id: String(sent), data: JSON.stringify({ type: 'BOOKMARK', object: { metadata: { resourceVersion: String(sent) } } }) });
        }
        while (!closed) {
          if (queue.length === 0) {
            await new Promise<void>((resolve) => {
              wake = resolve;
            });
            wake = undefined;
            continue;
          }
          // A transaction's events arrive in one notification, so they are all in this batch.
          const floor = sent;
          for (const e of queue.splice(0)) {
            if (e.revision <= floor) continue;
            if (visible(e.object)) await send(e);
            sent = Math.max(sent, e.revision);
          }
        }
      } finally {
        clearInterval(heartbeat);
        unsubscribe();
      }
    });
  });
}
