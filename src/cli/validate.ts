/**
 * `skiff validate -f <dir|file>`: parses and checks mesh YAML exactly as `skiff serve` would,
 * printing each error and warning as `file:line path: message`. Exit code 1 on any error.
 */
import type { Command } from 'commander';
import { formatIssue } from '../resources/parse.js';
import { loadDirectory } from '../sources/file/index.js';

/** Adds the `validate` subcommand to `program`. */
export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description('check mesh YAML (the same parsing and validation as serve)')
    .requiredOption('-f, --filename <path>', 'a directory (read recursively) or a file')
    .action(async (flags: { filename: string }) => {
      const result = await loadDirectory(flags.filename);
      for (const e of result.errors) process.stdout.write(`error: ${formatIssue(e)}\n`);
      for (const w of result.warnings) process.stdout.write(`warning: ${formatIssue(w)}\n`);
      process.stdout.write(`${result.resources.length} resources, ${result.errors.length} errors, ${result.warnings.length} warnings\n`);
      if (result.errors.length > 0) process.exitCode = 1;
    });
}
