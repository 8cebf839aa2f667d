/**
 * Structured logging (pino). One root logger per process, children per component.
 *
 * Never log secrets: private keys, bearer tokens or whole certificates. Log a certificate by its
 * serial number and SPIFFE ID, a token by its `jti`.
 */
import { destination, pino, type Logger } from 'pino';

export type { Logger } from 'pino';

/** Options for {@link createLogger}. `level` defaults to `SKIFF_LOG_LEVEL` or `info`. */
export interface LoggerOptions {
  level?: string;
  /** Component name put on every line as `component`. */
  component?: string;
  /** Write to this destination (file descriptor 1 = stdout by default, 2 for stderr). */
  fd?: number;
}

/**
 * Creates a pino logger writing JSON lines. Redacts common secret-bearing keys as a guard.
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? process.env['SKIFF_LOG_LEVEL'] ?? 'info';
  const logger = pino(
    {
      level,
      base: opts.component ? { component: opts.component } : {},
      redact: {
        paths: ['token', '*.token', 'authorization', '*.authorization', 'privateKey', '*.privateKey', 'key', '*.key'],
        censor: '[redacted]',
      },
    },
    destination({ fd: opts.fd ?? 1, sync: true }),
  );
  return logger;
}

/** A logger that discards everything, for tests and benchmarks. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
