/**
 * `skiff apply -f <file|dir|->`: sends YAML/JSON resources to the API's `POST /v1/apply` as one
 * request, so every document is applied or none. Files of a directory (`*.yaml`, `*.yml`,
 * `*.json`, recursively, in path order, hidden ones skipped) are joined into one multi-document
 * body; line numbers in the server's errors are mapped back to `file:line`.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { ApiClient, ApiClientError, addClientOptions, formatProblem, resolveClientOptions, type ClientFlags, type ProblemFieldError } from './api-client.js';
import { collect } from './options.js';

interface ApplyFlags extends ClientFlags {
  filename: string[];
}

interface ApplyResult {
  resourceVersion: string;
  items: { kind: string; namespace: string; name: string; action: string; resourceVersion: string }[];
  warnings: ProblemFieldError[];
}

/** One input file's place in the joined body. */
interface Segment {
  file: string;
  /** 1-based body line of the file's first line. */
  firstLine: number;
  lines: number;
}

const CONFIG_FILE = /\.(ya?ml|json)$/i;

function listFiles(p: string): string[] {
  const st = fs.statSync(p);
  if (!st.isDirectory()) return [p];
  const out: string[] = [];
  for (const entry of fs.readdirSync(p, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.name.startsWith('.')) continue;
    const child = path.join(p, entry.name);
    if (fs.statSync(child).isDirectory()) out.push(...listFiles(child));
    else if (CONFIG_FILE.test(entry.name)) out.push(child);
  }
  return out;
}

/** Joins inputs into one multi-document body and remembers where each file landed. */
export function joinDocuments(inputs: { file: string; text: string }[]): { body: string; segments: Segment[] } {
  const parts: string[] = [];
  const segments: Segment[] = [];
  let line = 1;
  for (const { file, text } of inputs) {
    if (text.trim() === '') continue;
    if (parts.length > 0) {
      parts.push('---\n');
      line += 1;
    }
    const normalized = text.endsWith('\n') ? text : `${text}\n`;
    const lines = normalized.split('\n').length - 1;
    segments.push({ file, firstLine: line, lines });
    parts.push(normalized);
    line += lines;
  }
  return { body: parts.join(''), segments };
}

/** `file:line` of a body line, or undefined if it falls on a separator. */
export function locateLine(segments: readonly Segment[], bodyLine: number): string | undefined {
  const seg = segments.find((s) => bodyLine >= s.firstLine && bodyLine < s.firstLine + s.lines);
  return seg ? `${seg.file}:${bodyLine - seg.firstLine + 1}` : undefined;
}

/** Adds `apply` to `program`. */
export function registerApply(program: Command): void {
  addClientOptions(
    program
      .command('apply')
      .description('create or update resources through the API (all documents or none)')
      .requiredOption('-f, --filename <path>', 'a YAML/JSON file, a directory of them, or - for stdin (repeatable)', collect, []),
  ).action(async (flags: ApplyFlags) => {
    const inputs: { file: string; text: string }[] = [];
    for (const f of flags.filename) {
      if (f === '-') inputs.push({ file: '<stdin>', text: fs.readFileSync(0, 'utf8') });
      else for (const file of listFiles(f)) inputs.push({ file, text: fs.readFileSync(file, 'utf8') });
    }
    const { body, segments } = joinDocuments(inputs);
    if (body.trim() === '') throw new Error(`no resources in ${flags.filename.join(', ')}`);
    const client = new ApiClient(resolveClientOptions(flags));
    let result: ApplyResult;
    try {
      result = (await client.request<ApplyResult>('POST', '/v1/apply', { text: body, contentType: 'application/yaml' })).body;
    } catch (err) {
      if (err instanceof ApiClientError && err.problem) throw new Error(formatProblem(err.status, err.problem, (line) => locateLine(segments, line)));
      throw err;
    }
    for (const w of result.warnings) {
      const where = w.line !== undefined ? locateLine(segments, w.line) : undefined;
      process.stderr.write(`warning: ${where ? `${where} ` : ''}${w.path ? `${w.path}: ` : ''}${w.message}\n`);
    }
    for (const item of result.items) process.stdout.write(`${item.kind} ${item.namespace}/${item.name} ${item.action} (resourceVersion ${item.resourceVersion})\n`);
  });
}
