/**
 * The node agent's public surface, used by the CLI (`skiff agent`, src/cli) and end-to-end tests.
 */
export { startAgent, BOOTSTRAP_FILE, type Agent, type StartAgentOptions } from './agent.js';
export {
  loadAgentConfig,
  AgentConfigError,
  DEFAULT_AGENT_CONFIG_FILE,
  envVarFor,
  flagFor,
  workloadSpiffeId,
  controlPlaneSpiffeId,
  type AgentConfig,
  type AgentConfigInput,
  type LoadAgentConfigOptions,
} from './config.js';
export { SvidError, type Svid } from './svid.js';
export { RegistrationRefusedError } from './registration.js';
export type { HealthVerdict } from './health.js';
export { findEnvoy } from './envoy-path.js';
