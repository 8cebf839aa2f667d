/**
 * Durable, race-safe file helpers for key material and token state. Several processes on one
 * host (the control plane and a later `skiff token create`) share these files, so creation is
 * atomic: a file is written and fsync'd under a temporary name and then hard-linked into place
 * (`link(2)` fails with EEXIST instead of overwriting), and the directory is fsync'd so the new
 * name survives a crash.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import crypto from 'node:crypto';

/** Mode for files holding private keys or token state (owner read/write only). */
export const SECRET_FILE_MODE = 0o600;
/** Mode for directories holding such files. */
export const SECRET_DIR_MODE = 0o700;

/** Creates `dir` (and parents) with mode 0700 if it does not exist. */
export async function ensureDir(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: SECRET_DIR_MODE });
}

/** fsyncs a directory so that names created or removed in it are durable. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes `data` to `file` with `mode`, and fsyncs it before returning. Overwrites. */
export async function writeFileSynced(file: string, data: string | Uint8Array, mode = SECRET_FILE_MODE): Promise<void> {
  const handle = await fs.open(file, 'w', mode);
  try {
    await handle.writeFile(data);
    await handle.chmod(mode); // open's mode is masked by the umask; make it exact
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Creates `file` holding `data` only if no file of that name exists, atomically: readers never
 * see a partly written file. Returns true if this call created it, false if it already existed
 * (then its content is left untouched). Durable (file and directory fsync'd) on return.
 */
export async function createFileExclusive(file: string, data: string | Uint8Array, mode = SECRET_FILE_MODE): Promise<boolean> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`);
  await writeFileSynced(tmp, data, mode);
  try {
    await fs.link(tmp, file);
    await syncDir(dir);
    return true;
  } catch (err) {
    if (isErrno(err, 'EEXIST')) return false;
    throw err;
  } finally {
    await fs.rm(tmp, { force: true });
  }
}

/** True if `err` is a Node system error with the given `code` (`ENOENT`, `EEXIST`, ...). */
export function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as NodeJS.ErrnoException).code === code;
}

/** Reads a UTF-8 file, or returns undefined if it does not exist. */
export async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

/** True if `file` is readable or writable by group or others (mode bits 0o077). */
export async function isGroupOrWorldAccessible(file: string): Promise<boolean> {
  const st = await fs.stat(file);
  return (st.mode & 0o077) !== 0;
}
