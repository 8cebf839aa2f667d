/**
 * Istio authorization semantics as a reference evaluator (DESIGN.md §2 `policy/`): used by tests
 * to check the Envoy translation and by `skiff policy check`. Imports nothing from `translate/`
 * or `push/`.
 */
export { evaluate, isDryRun } from './evaluate.js';
export { effectiveMtlsMode, policyApplies, policyKey, type EffectiveMtls } from './scope.js';
export { lintPolicies, type LintFinding, type LintOptions } from './lint.js';
export { describeDestination, inboundPorts, portProtocol, type DestinationChoice, type InboundPort } from './destination.js';
export type {
  Decision,
  DecisionStatus,
  DryRunResult,
  EvaluationDestination,
  EvaluationInput,
  EvaluationPolicies,
  EvaluationRequest,
  ExternalAuthzCheck,
  JwksLookup,
  RequestAuth,
  RuleRef,
} from './types.js';
