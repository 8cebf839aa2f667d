/**
 * Loads the Envoy translator's golden cases (`test/golden/envoy/<case>.in.yaml`) and runs the
 * pipeline on them: parse → snapshot → push context (IR) → validate → translate.
 *
 * A case file is mesh resources (multi-document YAML, as in a config dir) whose header names the
 * proxy to compute, in one comment line of YAML flow syntax:
 *
 *   # proxy: {id: "sidecar~198.18.0.1~a.demo~demo.svc.cluster.local", metadata: {NAMESPACE: demo, SERVICE_ACCOUNT: a, WORKLOAD_NAME: a}}
 *
 * (an optional `trustDomain` key defaults to `cluster.local`).
 *
 * Optional companions: `<case>.mesh-config.yaml` (the control plane's mesh config, read with the
 * real loader: root namespace, extension providers) and `<case>.jwks.yaml` (a map from `jwksUri`
 * to the JWKS document the control plane fetched, as a JSON string or a YAML object).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import type { ProxyIR } from '../../src/ir/types.js';
import { validate } from '../../src/ir/validate.js';
import { buildProxyIR, parseProxyNode } from '../../src/push/index.js';
import { formatIssue, parseResources } from '../../src/resources/parse.js';
import { translateEnvoy, type EnvoyTranslation } from '../../src/translate/envoy/index.js';
import { buildSnapshot } from '../../src/registry/index.js';
import { parseMeshConfig } from '../../src/resources/mesh-config.js';
import type { BuildExtras } from '../../src/push/index.js';

/** The folder holding the cases. */
export const CASES_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'envoy');

/** Case names (file names without `.in.yaml`), sorted. */
export function caseNames(): string[] {
  return fs
    .readdirSync(CASES_DIR)
    .filter((f) => f.endsWith('.in.yaml'))
    .map((f) => f.slice(0, -'.in.yaml'.length))
    .sort();
}

/** One case run through the pipeline. */
export interface EnvoyCase {
  name: string;
  ir: ProxyIR;
  validationErrors: string[];
  translation: EnvoyTranslation;
}

interface ProxyHeader {
  id: string;
  metadata?: Record<string, unknown>;
  trustDomain?: string;
}

function proxyHeader(text: string, file: string): ProxyHeader {
  const line = text.split('\n').find((l) => l.startsWith('# proxy:'));
  if (!line) throw new Error(`${file}: no "# proxy: {...}" header line`);
  const header = YAML.parse(line.slice('# proxy:'.length)) as unknown;
  if (typeof header !== 'object' || header === null || typeof (header as ProxyHeader).id !== 'string') {
    throw new Error(`${file}: the proxy header needs at least {id: "..."}`);
  }
  return header as ProxyHeader;
}

/** The mesh config and fetched JWKS documents of case `name`, from its companion files. */
function extrasOf(name: string): BuildExtras {
  const extras: BuildExtras = {};
  const meshFile = path.join(CASES_DIR, `${name}.mesh-config.yaml`);
  if (fs.existsSync(meshFile)) {
    const loaded = parseMeshConfig(fs.readFileSync(meshFile, 'utf8'), `${name}.mesh-config.yaml`);
    if (loaded.errors.length > 0) throw new Error(`${meshFile}:\n${loaded.errors.map(formatIssue).join('\n')}`);
    extras.meshConfig = loaded.config;
  }
  const jwksFile = path.join(CASES_DIR, `${name}.jwks.yaml`);
  if (fs.existsSync(jwksFile)) {
    const docs = YAML.parse(fs.readFileSync(jwksFile, 'utf8')) as Record<string, unknown>;
    extras.jwks = new Map(Object.entries(docs).map(([uri, doc]) => [uri, typeof doc === 'string' ? doc : JSON.stringify(doc)]));
  }
  return extras;
}

/** Loads and runs case `name`. Throws when the input has resource errors. */
export function runCase(name: string): EnvoyCase {
  const file = path.join(CASES_DIR, `${name}.in.yaml`);
  const text = fs.readFileSync(file, 'utf8');
  const header = proxyHeader(text, file);
  const parsed = parseResources(text, `${name}.in.yaml`);
  if (parsed.errors.length > 0) throw new Error(`${file}:\n${parsed.errors.map(formatIssue).join('\n')}`);
  const snapshot = buildSnapshot(1, parsed.resources);
  const proxy = parseProxyNode({ id: header.id, metadata: header.metadata ?? {} }, header.trustDomain ?? 'cluster.local');
  const ir = buildProxyIR(snapshot, proxy, extrasOf(name));
  const validationErrors = validate(ir);
  const translation = translateEnvoy(ir);
  return { name, ir, validationErrors, translation };
}
