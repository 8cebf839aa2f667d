/**
 * The parts of Consul's HTTP API responses the Consul source reads, with the exact field names
 * and casing Consul uses (https://developer.hashicorp.com/consul/api-docs/catalog#list-services and
 * https://developer.hashicorp.com/consul/api-docs/health#list-service-instances-for-service), and
 * zod schemas that check a decoded body before it is used.
 *
 * A response that is not the documented container (an object of tag lists, an array of entries)
 * is an error for the whole query; one entry of `/v1/health/service/<name>` that does not have the
 * documented shape is reported and skipped on its own, so one bad instance never hides the rest.
 * Fields Skiff does not read are not checked (Consul adds fields over time).
 */
import { z } from 'zod';

/** Consul's string maps (`Meta`, `NodeMeta`) may be `null` when empty. */
const stringMap = z.record(z.string(), z.string()).nullish();

/** `Node` of a `/v1/health/service/<name>` entry. */
export const healthNodeSchema = z.object({
  ID: z.string().optional(),
  Node: z.string().min(1),
  Address: z.string(),
  Datacenter: z.string().optional(),
  Meta: stringMap,
});

/** `Service` of a `/v1/health/service/<name>` entry (a service instance). */
export const healthServiceSchema = z.object({
  ID: z.string().min(1),
  Service: z.string().min(1),
  Tags: z.array(z.string()).nullish(),
  Address: z.string().optional(),
  Meta: stringMap,
  Port: z.number().int().optional(),
  Weights: z.object({ Passing: z.number().int(), Warning: z.number().int() }).nullish(),
  Namespace: z.string().optional(),
  Partition: z.string().optional(),
});

/** One entry of `Checks`: a node-level check (empty `ServiceID`) or one of the instance's checks. */
export const healthCheckSchema = z.object({
  Node: z.string().optional(),
  CheckID: z.string(),
  Name: z.string().optional(),
  /** `passing`, `warning`, `critical` (maintenance mode is a critical check with a reserved ID). */
  Status: z.string(),
  Notes: z.string().optional(),
  Output: z.string().optional(),
  ServiceID: z.string().optional(),
});

/** One entry of `GET /v1/health/service/<name>`: a service instance, its node and their checks. */
export const healthServiceEntrySchema = z.object({
  Node: healthNodeSchema,
  Service: healthServiceSchema,
  Checks: z.array(healthCheckSchema).nullish(),
});

/** A node as `/v1/health/service/<name>` returns it. */
export type HealthNode = z.infer<typeof healthNodeSchema>;
/** A service instance as `/v1/health/service/<name>` returns it. */
export type HealthService = z.infer<typeof healthServiceSchema>;
/** A health check as `/v1/health/service/<name>` returns it. */
export type HealthCheck = z.infer<typeof healthCheckSchema>;
/** One entry of `GET /v1/health/service/<name>`. */
export type HealthServiceEntry = z.infer<typeof healthServiceEntrySchema>;

/** `GET /v1/catalog/services`: service name → every tag any of its instances carries. */
export const catalogServicesSchema = z.record(z.string(), z.array(z.string()).nullable());

/** The body of `GET /v1/catalog/services`. */
export type CatalogServices = z.infer<typeof catalogServicesSchema>;

/**
 * Check IDs Consul's agent uses for maintenance mode (`PUT /v1/agent/service/maintenance/<id>`,
 * `PUT /v1/agent/maintenance`): a critical check `_service_maintenance:<service id>` or
 * `_node_maintenance`, whose `Notes` hold the operator's reason.
 */
export const SERVICE_MAINTENANCE_PREFIX = '_service_maintenance:';
/** See {@link SERVICE_MAINTENANCE_PREFIX}. */
export const NODE_MAINTENANCE_CHECK_ID = '_node_maintenance';

/** The result of checking a `/v1/health/service/<name>` body: the valid entries and one message per bad one. */
export interface CheckedHealthEntries {
  entries: HealthServiceEntry[];
  problems: string[];
}

/**
 * Checks a decoded `/v1/health/service/<name>` body. Throws when it is not an array (the query
 * failed as a whole); an element without the documented shape becomes a problem naming the element
 * (its node and service ID when present) and the first offending field.
 */
export function checkHealthEntries(body: unknown): CheckedHealthEntries {
  if (!Array.isArray(body)) throw new Error(`expected a JSON array of service instances, got ${describeJson(body)}`);
  const entries: HealthServiceEntry[] = [];
  const problems: string[] = [];
  body.forEach((raw: unknown, i) => {
    const parsed = healthServiceEntrySchema.safeParse(raw);
    if (parsed.success) {
      entries.push(parsed.data);
      return;
    }
    const issue = parsed.error.issues[0];
    const where = issue ? issue.path.map(String).join('.') : '';
    problems.push(`entry ${i} (${entryLabel(raw)}): ${where ? `${where}: ` : ''}${issue?.message ?? 'invalid'}: skipped`);
  });
  return { entries, problems };
}

/** Checks a decoded `/v1/catalog/services` body; throws with a clear message when it has another shape. */
export function checkCatalogServices(body: unknown): CatalogServices {
  const parsed = catalogServicesSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue ? issue.path.map(String).join('.') : '';
    throw new Error(`expected an object of service name → tag list, got ${describeJson(body)}${where ? ` (at ${where})` : ''}`);
  }
  return parsed.data;
}

/** `node/serviceID` of a raw entry when it has them, for messages. */
function entryLabel(raw: unknown): string {
  const obj = (v: unknown): Record<string, unknown> | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined);
  const node = obj(obj(raw)?.['Node'])?.['Node'];
  const id = obj(obj(raw)?.['Service'])?.['ID'];
  return `node ${typeof node === 'string' ? JSON.stringify(node) : '?'}, service ID ${typeof id === 'string' ? JSON.stringify(id) : '?'}`;
}

/** A short description of a decoded JSON value for error messages (never the whole body). */
export function describeJson(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `a string (${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)})`;
  if (Buffer.isBuffer(v)) return `${v.length} bytes that are not JSON`;
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v} ${v}`;
  return typeof v === 'object' ? 'an object' : typeof v;
}
