/**
 * Consul's filter expressions (`?filter=`), the subset the Consul test server needs, as documented
 * at https://developer.hashicorp.com/consul/api-docs/features/filtering:
 *
 *   <Selector> == "<Value>"            <Selector> != "<Value>"
 *   <Selector> is empty                <Selector> is not empty
 *   "<Value>" in <Selector>            "<Value>" not in <Selector>
 *   <Selector> contains "<Value>"      <Selector> not contains "<Value>"
 *   <Selector> matches "<Value>"       <Selector> not matches "<Value>"
 *   <expr> and <expr>, <expr> or <expr>, not <expr>, ( <expr> )
 *
 * Selectors are `.`-separated names, with `["key"]` for map keys; values are double-quoted or
 * backtick strings, numbers, or bare words. `in`/`contains` test membership in a list, a key in a
 * map, or a substring. A selector that goes through a list (`Checks.Status`) matches when any
 * element matches. Precedence: `not` > `and` > `or`.
 */

/** A parsed filter; `evaluate` runs it on one result element. */
export interface Filter {
  evaluate(value: unknown): boolean;
}

/** Thrown for an expression that does not parse; the server answers 400 with its message. */
export class FilterError extends Error {}

type Token = { kind: 'word'; text: string } | { kind: 'string'; text: string } | { kind: 'op'; text: string };

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '"' || c === '`') {
      let j = i + 1;
      let text = '';
      while (j < src.length && src[j] !== c) {
        if (c === '"' && src[j] === '\\' && j + 1 < src.length) {
          const n = src[j + 1]!;
          text += n === 'n' ? '\n' : n === 't' ? '\t' : n;
          j += 2;
        } else {
          text += src[j];
          j++;
        }
      }
      if (j >= src.length) throw new FilterError(`unterminated string at offset ${i}`);
      out.push({ kind: 'string', text });
      i = j + 1;
    } else if (src.startsWith('==', i) || src.startsWith('!=', i)) {
      out.push({ kind: 'op', text: src.slice(i, i + 2) });
      i += 2;
    } else if (c === '(' || c === ')' || c === '[' || c === ']' || c === '.') {
      out.push({ kind: 'op', text: c });
      i++;
    } else if (/[A-Za-z0-9_\-+:/]/.test(c)) {
      let j = i;
      while (j < src.length && /[A-Za-z0-9_\-+:/]/.test(src[j]!)) j++;
      out.push({ kind: 'word', text: src.slice(i, j) });
      i = j;
    } else {
      throw new FilterError(`unexpected character ${JSON.stringify(c)} at offset ${i}`);
    }
  }
  return out;
}

type Node =
  | { op: 'and' | 'or'; left: Node; right: Node }
  | { op: 'not'; inner: Node }
  | { op: 'match'; selector: string[]; kind: '==' | '!=' | 'empty' | 'in' | 'contains' | 'matches'; negate: boolean; value: string };

const KEYWORDS = new Set(['and', 'or', 'not', 'in', 'is', 'empty', 'contains', 'matches']);

/** Parses `src`; throws {@link FilterError} naming the problem. */
export function parseFilter(src: string): Filter {
  const tokens = tokenize(src);
  let pos = 0;
  const peek = (): Token | undefined => tokens[pos];
  const isWord = (t: Token | undefined, w: string): boolean => t?.kind === 'word' && t.text === w;
  const expectOp = (text: string): void => {
    const t = tokens[pos];
    if (t?.kind !== 'op' || t.text !== text) throw new FilterError(`expected ${JSON.stringify(text)} at token ${pos + 1}`);
    pos++;
  };
  const selector = (): string[] => {
    const first = tokens[pos];
    if (first?.kind !== 'word' || KEYWORDS.has(first.text) || !/^[A-Za-z]/.test(first.text)) throw new FilterError(`expected a selector at token ${pos + 1}`);
    pos++;
    const parts = [first.text];
    for (;;) {
      const t = peek();
      if (t?.kind === 'op' && t.text === '.') {
        pos++;
        const name = tokens[pos];
        if (name?.kind !== 'word') throw new FilterError(`expected a name after "." at token ${pos + 1}`);
        parts.push(name.text);
        pos++;
      } else if (t?.kind === 'op' && t.text === '[') {
        pos++;
        const key = tokens[pos];
        if (key?.kind !== 'string') throw new FilterError(`expected a quoted map key at token ${pos + 1}`);
        parts.push(key.text);
        pos++;
        expectOp(']');
      } else {
        return parts;
      }
    }
  };
  const value = (): string => {
    const t = tokens[pos];
    if (t === undefined || t.kind === 'op') throw new FilterError(`expected a value at token ${pos + 1}`);
    pos++;
    return t.text;
  };
  const match = (): Node => {
    const t = peek();
    if (t?.kind === 'string' || (t?.kind === 'word' && /^[0-9-]/.test(t.text))) {
      const v = value();
      const negate = isWord(peek(), 'not');
      if (negate) pos++;
      if (!isWord(peek(), 'in')) throw new FilterError(`expected "in" after value ${JSON.stringify(v)}`);
      pos++;
      return { op: 'match', selector: selector(), kind: 'in', negate, value: v };
    }
    const sel = selector();
    const next = peek();
    if (next?.kind === 'op' && (next.text === '==' || next.text === '!=')) {
      pos++;
      return { op: 'match', selector: sel, kind: next.text === '==' ? '==' : '!=', negate: false, value: value() };
    }
    if (isWord(next, 'is')) {
      pos++;
      const negate = isWord(peek(), 'not');
      if (negate) pos++;
      if (!isWord(peek(), 'empty')) throw new FilterError('expected "empty" after "is"');
      pos++;
      return { op: 'match', selector: sel, kind: 'empty', negate, value: '' };
    }
    const negate = isWord(next, 'not');
    if (negate) pos++;
    const verb = peek();
    if (isWord(verb, 'contains') || isWord(verb, 'matches')) {
      pos++;
      return { op: 'match', selector: sel, kind: (verb as { text: 'contains' | 'matches' }).text, negate, value: value() };
    }
    throw new FilterError(`expected an operator after selector ${sel.join('.')}`);
  };
  const unary = (): Node => {
    if (isWord(peek(), 'not')) {
      pos++;
      return { op: 'not', inner: unary() };
    }
    const t = peek();
    if (t?.kind === 'op' && t.text === '(') {
      pos++;
      const inner = or();
      expectOp(')');
      return inner;
    }
    return match();
  };
  const and = (): Node => {
    let left = unary();
    while (isWord(peek(), 'and')) {
      pos++;
      left = { op: 'and', left, right: unary() };
    }
    return left;
  };
  const or = (): Node => {
    let left = and();
    while (isWord(peek(), 'or')) {
      pos++;
      left = { op: 'or', left, right: and() };
    }
    return left;
  };
  if (tokens.length === 0) throw new FilterError('empty expression');
  const root = or();
  if (pos !== tokens.length) throw new FilterError(`unexpected ${JSON.stringify(tokens[pos]!.text)} at token ${pos + 1}`);
  return { evaluate: (v) => evaluate(root, v) };
}

function scalar(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

function test1(found: unknown, kind: Exclude<Extract<Node, { op: 'match' }>['kind'], never>, value: string): boolean {
  switch (kind) {
    case '==':
      return scalar(found) === value;
    case '!=':
      return scalar(found) !== value;
    case 'empty':
      return found === null || found === undefined || found === '' || (Array.isArray(found) && found.length === 0) || (typeof found === 'object' && Object.keys(found).length === 0);
    case 'in':
    case 'contains':
      if (Array.isArray(found)) return found.some((e) => scalar(e) === value);
      if (typeof found === 'string') return found.includes(value);
      if (typeof found === 'object' && found !== null) return Object.hasOwn(found, value);
      return false;
    case 'matches': {
      const s = scalar(found);
      return s !== undefined && new RegExp(value).test(s);
    }
  }
}

function evaluate(n: Node, v: unknown): boolean {
  switch (n.op) {
    case 'and':
      return evaluate(n.left, v) && evaluate(n.right, v);
    case 'or':
      return evaluate(n.left, v) || evaluate(n.right, v);
    case 'not':
      return !evaluate(n.inner, v);
    case 'match': {
      // The last selector part of a list-valued selector (`Service.Tags`) is the list itself.
      const found = resolveKeepingLists(v, n.selector);
      const hit = found.length === 0 ? test1(undefined, n.kind, n.value) : found.some((f) => test1(f, n.kind, n.value));
      return n.negate ? !hit : hit;
    }
  }
}

/** Like `resolve`, but a list at the end of the path is returned whole (so `in` tests membership). */
function resolveKeepingLists(v: unknown, path: readonly string[]): unknown[] {
  if (path.length === 0) return [v];
  if (Array.isArray(v)) return v.flatMap((e) => resolveKeepingLists(e, path));
  if (typeof v !== 'object' || v === null) return [];
  const [head, ...rest] = path as [string, ...string[]];
  if (!Object.hasOwn(v, head)) return [];
  const next = (v as Record<string, unknown>)[head];
  return rest.length === 0 ? [next] : resolveKeepingLists(next, rest);
}
