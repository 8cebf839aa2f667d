/**
 * Kubernetes label selectors in their string form, as `kubectl -l` and the `labelSelector` query
 * parameter take them (k8s.io/apimachinery `pkg/labels/selector.go`): requirements separated by
 * commas, all of which must hold:
 *
 *   app=web            equality (also `==`)
 *   tier!=db           inequality: true when the label is absent or differs
 *   env in (a,b)       set membership
 *   env notin (a,b)    true when the label is absent or not in the set
 *   canary             the label exists
 *   !canary            the label does not exist
 *
 * The numeric `>`/`<` operators are not supported (a clear error says so).
 */
import { labelKeyProblem, labelValueProblem } from '../resources/names.js';

/** One parsed requirement. */
export type LabelRequirement =
  | { key: string; op: 'eq' | 'neq'; value: string }
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'exists' | 'notexists' };

/** A selector that does not parse; `message` says where and why. */
export class LabelSelectorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LabelSelectorError';
  }
}

/** Splits on commas that are not inside parentheses. */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (depth < 0) throw new LabelSelectorError(`unbalanced ")" in label selector "${text}"`);
    if (ch === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  if (depth !== 0) throw new LabelSelectorError(`unbalanced "(" in label selector "${text}"`);
  parts.push(current);
  return parts;
}

function checkKey(key: string, clause: string): string {
  if (key === '') throw new LabelSelectorError(`missing label key in "${clause}"`);
  const p = labelKeyProblem(key);
  if (p !== undefined) throw new LabelSelectorError(`${p} in "${clause}"`);
  return key;
}

function checkValue(value: string, clause: string): string {
  const p = labelValueProblem(value);
  if (p !== undefined) throw new LabelSelectorError(`${p} in "${clause}"`);
  return value;
}

/**
 * Parses a selector string; the empty string selects everything (no requirements). Throws
 * {@link LabelSelectorError} naming the bad clause.
 */
export function parseLabelSelector(text: string): LabelRequirement[] {
  if (text.trim() === '') return [];
  const out: LabelRequirement[] = [];
  for (const raw of splitTopLevel(text)) {
    const clause = raw.trim();
    if (clause === '') throw new LabelSelectorError(`empty requirement in label selector "${text}"`);
    const set = /^(\S+)\s+(in|notin)\s*\((.*)\)$/.exec(clause);
    if (set) {
      const values = (set[3] ?? '').split(',').map((v) => checkValue(v.trim(), clause));
      if (values.length === 1 && values[0] === '') throw new LabelSelectorError(`empty value set in "${clause}"`);
      out.push({ key: checkKey(set[1] ?? '', clause), op: set[2] === 'in' ? 'in' : 'notin', values });
      continue;
    }
    const eq = /^([^=!<>\s]*)\s*(==|=|!=)\s*(.*)$/.exec(clause);
    if (eq) {
      const value = (eq[3] ?? '').trim();
      out.push({ key: checkKey(eq[1] ?? '', clause), op: eq[2] === '!=' ? 'neq' : 'eq', value: checkValue(value, clause) });
      continue;
    }
    if (/[<>]/.test(clause)) throw new LabelSelectorError(`the > and < operators are not supported ("${clause}")`);
    if (clause.startsWith('!')) {
      out.push({ key: checkKey(clause.slice(1).trim(), clause), op: 'notexists' });
      continue;
    }
    if (/\s/.test(clause)) throw new LabelSelectorError(`cannot parse "${clause}": expected key, !key, key=value, key!=value, key in (...) or key notin (...)`);
    out.push({ key: checkKey(clause, clause), op: 'exists' });
  }
  return out;
}

/** True when `labels` satisfy every requirement. */
export function matchesLabelSelector(requirements: readonly LabelRequirement[], labels: Readonly<Record<string, string>> | undefined): boolean {
  const l = labels ?? {};
  return requirements.every((r) => {
    const has = Object.hasOwn(l, r.key);
    const v = l[r.key];
    switch (r.op) {
      case 'eq':
        return has && v === r.value;
      case 'neq':
        return !has || v !== r.value;
      case 'in':
        return has && r.values.includes(v ?? '');
      case 'notin':
        return !has || !r.values.includes(v ?? '');
      case 'exists':
        return has;
      case 'notexists':
        return !has;
    }
  });
}

/** Renders requirements back into the string form (for logs and continue tokens). */
export function formatLabelSelector(requirements: readonly LabelRequirement[]): string {
  return requirements
    .map((r) => {
      switch (r.op) {
        case 'eq':
          return `${r.key}=${r.value}`;
        case 'neq':
          return `${r.key}!=${r.value}`;
        case 'in':
          return `${r.key} in (${r.values.join(',')})`;
        case 'notin':
          return `${r.key} notin (${r.values.join(',')})`;
        case 'exists':
          return r.key;
        case 'notexists':
          return `!${r.key}`;
      }
    })
    .join(',');
}
