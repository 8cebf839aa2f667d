/**
 * Checks the ztunnel binary the agent is told to run (`--ztunnel-path`, default
 * {@link DEFAULT_ZTUNNEL_PATH}, where the Ansible role installs it) before anything starts, so a
 * missing or non-executable file is one clear error instead of a restart loop.
 */
import fs from 'node:fs';

/** Where the agent looks for ztunnel when no path is configured. */
export const DEFAULT_ZTUNNEL_PATH = '/usr/local/bin/ztunnel';

/**
 * Returns undefined when `file` is a regular file this process may execute, else why not (for
 * example `/opt/ztunnel does not exist`, `... is not executable (mode 0644)`).
 */
export function ztunnelBinaryProblem(file: string): string | undefined {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? `${file} does not exist` : `${file} cannot be read (${code ?? (err as Error).message})`;
  }
  if (!st.isFile()) return `${file} is not a file`;
  try {
    fs.accessSync(file, fs.constants.X_OK);
  } catch {
    return `${file} is not executable (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')})`;
  }
  // root passes access(X_OK) when any execute bit is set, and fails otherwise: nothing more to check.
  return undefined;
}
