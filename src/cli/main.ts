#!/usr/bin/env node
/**
 * The `skiff` command (commander). Subcommands:
 *   serve          run the control plane (DESIGN.md §1)
 *   agent          run the node agent on a VM (DESIGN.md §8)
 *   token          create|list|revoke bootstrap tokens (on the host, or through the API)
 *   admin-token    create|list|revoke admin tokens of the HTTP API (on the host)
 *   apply/get/delete  resources through the HTTP API
 *   validate       check a directory of mesh YAML without serving it
 *   version        print the version
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { registerServe } from './serve/command.js';
import { registerAgent } from './agent.js';
import { registerToken } from './token.js';
import { registerAdminToken } from './admin-token.js';
import { registerApply } from './apply.js';
import { registerDelete } from './delete.js';
import { registerGet } from './get.js';
import { registerValidate } from './validate.js';
import { registerPolicy } from './policy.js';
import { skiffVersion } from './version.js';

/** Builds the program; exported so tests can run commands in-process. */
export function buildProgram(): Command {
  const program = new Command('skiff')
    .description('Skiff: a service mesh control plane for VMs and bare metal')
    .version(skiffVersion(), '--version')
    .showHelpAfterError();
  program
    .command('version')
    .description('print the Skiff version')
    .action(() => {
      process.stdout.write(`skiff ${skiffVersion()}\n`);
    });
  registerServe(program);
  registerAgent(program);
  registerToken(program);
  registerAdminToken(program);
  registerApply(program);
  registerGet(program);
  registerDelete(program);
  registerValidate(program);
  registerPolicy(program);
  return program;
}

/** True when this module is the process entry point (also through an npm bin symlink). */
function isEntryPoint(): boolean {
  const argv1 = process.argv[1];
  if (!argv1) return false;
  try {
    return fs.realpathSync(argv1) === fs.realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

const isMain = isEntryPoint();
if (isMain) {
  buildProgram()
    .parseAsync(process.argv)
    .catch((err: unknown) => {
      process.stderr.write(`skiff: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    });
}
