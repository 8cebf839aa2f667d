/**
 * Following token revocations down to certificates: when a bootstrap token is revoked (through
 * the API or by `skiff token revoke` on the host), the serials of the unexpired certificates
 * descending from it, so the control plane can close the xDS streams those certificates opened.
 */
import type { Logger } from '../observability/logger.js';
import type { Store } from './types.js';

/**
 * Calls `listener` with the revoked `jti`s and the serials of every unexpired certificate that
 * descends from them, after each revocation commits. Returns the unsubscribe function.
 */
export function followRevokedCertificates(
  store: Pick<Store, 'tokens' | 'certificates'>,
  logger: Logger,
  listener: (serials: ReadonlySet<string>, jtis: readonly string[]) => void,
): () => void {
  let active = true;
  const unsubscribe = store.tokens.subscribeRevocations((jtis) => {
    Promise.all(jtis.map((jti) => store.certificates.serialsOf(jti))).then(
      (lists) => {
        if (active) listener(new Set(lists.flat()), jtis);
      },
      (err: unknown) => logger.error({ err, jtis }, 'finding the certificates of revoked tokens failed'),
    );
  });
  return () => {
    active = false;
    unsubscribe();
  };
}
