/**
 * The Consul source (DESIGN.md §1, issue 5): Consul catalog services and instances as mesh
 * ServiceEntries and WorkloadEntries, followed live with blocking queries.
 */
export { createConsulSource, type ConsulSource, type ConsulSourceOptions, type ConsulSourceStatus, type ConsulServiceStatus, type ConsulSourceMetrics } from './source.js';
export {
  consulConfigFromFlags,
  consulInputFromFlags,
  readConsulConfigFile,
  resolveConsulConfig,
  normalizeConsulAddress,
  ConsulConfigError,
  CONSUL_DEFAULTS,
  type ConsulConfigInput,
  type ConsulFlags,
  type ConsulSourceConfig,
  type ConsulTlsConfig,
} from './config.js';
export { createConsulClient, ConsulRequestError, type ConsulClient, type ConsulAnswer } from './client.js';
export {
  mapConsulService,
  instanceHealth,
  serviceNameProblem,
  hostTemplateProblem,
  renderHost,
  workloadEntryName,
  serviceEntryName,
  DEFAULT_MAPPING,
  META,
  SOURCE_LABEL,
  CONSUL_SERVICE_LABEL,
  type ConsulMapping,
  type MappedService,
} from './mapping.js';
export { startBlockingQuery, backoffDelay, nextIndex, type BlockingQuery, type BlockingQueryOptions, type BlockingAnswer } from './watch.js';
export type { HealthServiceEntry, HealthCheck, HealthNode, HealthService, CatalogServices } from './api.js';
