/**
 * Entry point of the single-file agent binary `dist/skiff-agent-linux-x64` (a Node.js single
 * executable application built by scripts/build-agent-binary.mjs). It runs the same `skiff agent`
 * command as the npm package (src/cli/agent.ts: every flag, `/etc/skiff/agent.yaml`, `SKIFF_*`
 * variables) and `version`, and nothing of the control plane, so the binary carries no native
 * module:
 *
 *   skiff-agent-linux-x64 agent --config /etc/skiff/agent.yaml
 *   skiff-agent-linux-x64 --config /etc/skiff/agent.yaml      (`agent` is the default command)
 *   skiff-agent-linux-x64 version
 */
import { Command } from 'commander';
import Long from 'long';
import protobuf from 'protobufjs';
import { registerAgent } from '../src/cli/agent.js';
import { skiffVersion } from '../src/cli/version.js';

// protobufjs finds `long` with a hidden dynamic require that a bundle cannot follow; without it
// 64-bit fields would decode as plain numbers here and as Long objects in the npm package.
// (protobufjs's documented setup for bundlers.)
protobuf.util.Long = Long;
protobuf.configure();

/** The subcommands of the binary; any other first argument is taken as a flag of `agent`. */
const COMMANDS = new Set(['agent', 'version', 'help']);

/** Builds the binary's program: `agent` and `version`. */
export function buildAgentProgram(): Command {
  const program = new Command('skiff-agent')
    .description('Skiff node agent: SVID lifecycle, SDS, Envoy supervision, readiness on 15021')
    .version(skiffVersion(), '--version')
    .showHelpAfterError();
  program
    .command('version')
    .description('print the Skiff version')
    .action(() => {
      process.stdout.write(`skiff ${skiffVersion()}\n`);
    });
  registerAgent(program);
  return program;
}

/** `argv` with `agent` inserted when the first argument is not a subcommand (or `--version`/`--help`). */
export function withDefaultCommand(argv: string[]): string[] {
  const [node, script, first, ...rest] = argv;
  if (first !== undefined && (COMMANDS.has(first) || first === '--version' || first === '--help' || first === '-h')) return argv;
  return [node ?? '', script ?? '', 'agent', ...(first !== undefined ? [first] : []), ...rest];
}

buildAgentProgram()
  .parseAsync(withDefaultCommand(process.argv))
  .catch((err: unknown) => {
    process.stderr.write(`skiff-agent: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
