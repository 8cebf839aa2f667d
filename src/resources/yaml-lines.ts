/**
 * Finds the source line of a JSON path in a parsed YAML (or JSON) document, using the `yaml`
 * library's AST and its `LineCounter`. Used to put a line number on every error and warning.
 */
import { isAlias, isMap, isNode, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';
import type { PathSegment } from './issues.js';

function keyText(key: unknown): string {
  if (isScalar(key)) return String(key.value);
  return String(key);
}

/**
 * The 1-based line of the node at `path` in `doc`. A map entry is located by its key (the line a
 * reader looks at); when the path goes deeper than the document does (a missing field), the nearest
 * existing ancestor is used. Returns 0 only when the document has no contents at all.
 */
export function lineOfPath(doc: Document, lineCounter: LineCounter, path: readonly PathSegment[]): number {
  let node: unknown = doc.contents;
  let position: Node | null = isNode(doc.contents) ? doc.contents : null;
  for (const seg of path) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => keyText(p.key) === String(seg));
      if (!pair) break;
      if (isNode(pair.key)) position = pair.key;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg];
      if (!isNode(item)) break;
      position = item;
      node = item;
    } else {
      break;
    }
  }
  const start = position?.range?.[0];
  return start === undefined ? 0 : lineCounter.linePos(start).line;
}
