/**
 * Parses human durations for flags (`90s`, `30m`, `1h`, `2d`, or plain seconds) with the `ms`
 * library. Returns whole seconds; throws a message naming the flag on bad input.
 */
import ms from 'ms';

/** `parseDurationSeconds('1h', '--ttl')` → 3600. */
export function parseDurationSeconds(text: string, flag: string): number {
  const trimmed = text.trim();
  const millis = /^\d+$/.test(trimmed) ? Number(trimmed) * 1000 : ms(trimmed as ms.StringValue);
  if (typeof millis !== 'number' || !Number.isFinite(millis) || millis <= 0) {
    throw new Error(`${flag}: expected a duration like 90s, 30m, 1h or 2d, got "${text}"`);
  }
  return Math.round(millis / 1000);
}

/**
 * `parseDurationMs('10s', '--registration-grace-period')` → 10000; `500ms`, `2m` and plain
 * seconds (`3`) work too, and 0 is allowed. Throws a message naming the flag on bad input.
 */
export function parseDurationMs(text: string, flag: string): number {
  const trimmed = text.trim();
  const millis = /^\d+$/.test(trimmed) ? Number(trimmed) * 1000 : ms(trimmed as ms.StringValue);
  if (typeof millis !== 'number' || !Number.isFinite(millis) || millis < 0) {
    throw new Error(`${flag}: expected a duration like 500ms, 10s or 1m, got "${text}"`);
  }
  return Math.round(millis);
}
