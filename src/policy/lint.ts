/**
 * Warnings about security policies that only show against the workloads they apply to — the
 * warnings Istio gives when it translates them (`pilot/pkg/security/authz/builder`), reported
 * before anything is served:
 *
 * - an ALLOW rule with HTTP-only attributes on a workload's TCP port never matches there (the
 *   policy allows less); a DENY, AUDIT or CUSTOM rule loses those attributes there (it matches more);
 * - a CUSTOM policy whose provider is not in the mesh config denies what it matches; an HTTP
 *   provider does not apply to TCP ports; several providers on one workload deny what they match;
 * - a policy that applies to no WorkloadEntry; a RequestAuthentication on a workload with no HTTP
 *   port.
 */
import { httpOnlyParts } from '../resources/authz-attributes.js';
import { formatPath, type PathSegment, type ResourceLocator } from '../resources/issues.js';
import type { ExtensionProvider } from '../resources/mesh-config.js';
import type { AuthorizationPolicy, MeshResource, RequestAuthentication, ResourceIssue, WorkloadEntry } from '../resources/types.js';
import { inboundPorts, type InboundPort } from './destination.js';
import { isDryRun } from './evaluate.js';
import { policyApplies, policyKey } from './scope.js';

/** A lint warning (same shape as a resource issue: `formatIssue` prints it). */
export type LintFinding = ResourceIssue;

/** Options for {@link lintPolicies}. */
export interface LintOptions {
  rootNamespace: string;
  /** The mesh config's providers; undefined when no mesh config was given. */
  extensionProviders?: readonly ExtensionProvider[];
  /** Puts the exact line of a field on a finding (else the resource's first line is used). */
  locate?: ResourceLocator;
}

function workloadName(we: WorkloadEntry): string {
  return `${we.metadata.namespace}/${we.metadata.name}`;
}

/** Lints the AuthorizationPolicies and RequestAuthentications in `resources` (see the module comment). */
export function lintPolicies(resources: readonly MeshResource[], opts: LintOptions): LintFinding[] {
  const out: LintFinding[] = [];
  const at = (r: MeshResource, path: PathSegment[], message: string): LintFinding => ({
    file: r.origin?.file ?? `${r.kind} ${policyKey(r)}`,
    line: opts.locate?.(r, path) ?? r.origin?.line ?? 0,
    path: formatPath(path),
    message,
  });
  const workloads = resources.filter((r): r is WorkloadEntry => r.kind === 'WorkloadEntry');
  const ports = new Map<WorkloadEntry, InboundPort[]>(workloads.map((we) => [we, inboundPorts(resources, we, opts.rootNamespace)]));
  const inScope = (p: AuthorizationPolicy | RequestAuthentication): WorkloadEntry[] =>
    workloads.filter((we) => policyApplies(p, we.metadata.namespace, { ...(we.spec.labels ?? {}), ...(we.metadata.labels ?? {}) }, opts.rootNamespace));
  const policies = resources.filter((r): r is AuthorizationPolicy => r.kind === 'AuthorizationPolicy');

  for (const p of policies) {
    if (p.spec.targetRef !== undefined || (p.spec.targetRefs?.length ?? 0) > 0) continue; // warned about by the resource checks
    const action = p.spec.action ?? 'ALLOW';
    const scope = inScope(p);
    if (scope.length === 0) out.push(at(p, ['metadata', 'name'], `${action} policy applies to no WorkloadEntry (namespace ${p.metadata.namespace}${p.spec.selector ? ', with its selector' : ''})`));
    const tcpTargets = scope.flatMap((we) => (ports.get(we) ?? []).filter((pt) => pt.protocol === 'TCP').map((pt) => `${workloadName(we)}:${pt.port}`));

    (p.spec.rules ?? []).forEach((rule, i) => {
      const http = httpOnlyParts(rule);
      if (http.length === 0 || tcpTargets.length === 0) return;
      const fields = http.map((h) => formatPath(h.path)).join(', ');
      out.push(
        at(
          p,
          ['spec', 'rules', i],
          action === 'ALLOW'
            ? `rule uses HTTP-only attributes (${fields}) and never matches on TCP ports (${tcpTargets.join(', ')}): on those ports the ALLOW policy allows less`
            : `HTTP-only attributes (${fields}) are ignored on TCP ports (${tcpTargets.join(', ')}): on those ports this ${action} rule matches more`,
        ),
      );
    });

    if (action === 'CUSTOM' && !isDryRun(p)) {
      const name = p.spec.provider?.name ?? '';
      if (opts.extensionProviders === undefined) {
        out.push(at(p, ['spec', 'provider', 'name'], `no mesh config given: cannot check that extension provider "${name}" exists`));
      } else {
        const provider = opts.extensionProviders.find((e) => e.name === name);
        if (!provider) {
          out.push(at(p, ['spec', 'provider', 'name'], `extension provider "${name}" is not defined in the mesh config: requests this policy matches are denied`));
        } else if (provider.envoyExtAuthzHttp && tcpTargets.length > 0) {
          out.push(at(p, ['spec', 'provider', 'name'], `provider "${name}" is an HTTP authorizer: the policy does not apply to TCP ports (${tcpTargets.join(', ')})`));
        }
      }
    }
  }

  // Several CUSTOM providers on one workload.
  for (const we of workloads) {
    const custom = policies.filter((p) => (p.spec.action ?? 'ALLOW') === 'CUSTOM' && policyApplies(p, we.metadata.namespace, { ...(we.spec.labels ?? {}), ...(we.metadata.labels ?? {}) }, opts.rootNamespace));
    const names = [...new Set(custom.map((p) => p.spec.provider?.name ?? ''))];
    if (names.length > 1) {
      out.push(at(we, ['metadata', 'name'], `CUSTOM policies with several providers apply (${names.join(', ')}; ${custom.map(policyKey).join(', ')}): Istio allows one provider per workload and denies the requests they match`));
    }
  }

  for (const ra of resources.filter((r): r is RequestAuthentication => r.kind === 'RequestAuthentication')) {
    if (ra.spec.targetRef !== undefined || (ra.spec.targetRefs?.length ?? 0) > 0) continue;
    const scope = inScope(ra);
    if (scope.length === 0) {
      out.push(at(ra, ['metadata', 'name'], `RequestAuthentication applies to no WorkloadEntry (namespace ${ra.metadata.namespace}${ra.spec.selector ? ', with its selector' : ''})`));
      continue;
    }
    const tcpOnly = scope.filter((we) => {
      const list = ports.get(we) ?? [];
      return list.length > 0 && list.every((pt) => pt.protocol === 'TCP');
    });
    if (tcpOnly.length > 0) {
      out.push(at(ra, ['spec', 'jwtRules'], `JWT rules apply to HTTP ports only; ${tcpOnly.map(workloadName).join(', ')} ha${tcpOnly.length === 1 ? 's' : 've'} none`));
    }
  }
  return out;
}
