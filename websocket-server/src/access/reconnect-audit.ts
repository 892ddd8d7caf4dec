/**
 * After the broker reconnects, what this node may have missed is re-checked once: sign-outs
 * (each open session is confirmed against the database, a few at a time) and entitlement
 * changes (every grant with dependencies is re-checked by its policy). Once per reconnect, not
 * periodically: while the broker is up, control messages say what changed.
 */
import type { SessionCheck } from '../auth/session-check.ts';
import type { Logger } from '../logger.ts';
import type { Reauthorizer } from './reauthorizer.ts';
import type { SessionRegistry } from './sessions.ts';

/** Session confirmations in flight at once, so the audit does not swamp the database pool. */
const CONCURRENCY = 4;

export async function auditAfterReconnect(
  deps: { sessions: SessionRegistry; sessionCheck: SessionCheck; reauthorizer: Reauthorizer },
  logger: Logger,
): Promise<void> {
  const { sessions, sessionCheck, reauthorizer } = deps;
  const grants = reauthorizer.recheckAll('broker_reconnected');
  const holders = sessions.all();
  const seq = sessions.seq;
  let ended = 0;
  let next = 0;
  const worker = async () => {
    while (next < holders.length) {
      const holder = holders[next++]!;
      const verdict = await sessionCheck.confirm(holder.session, seq);
      if (!verdict.ok && (verdict.reason === 'revoked' || verdict.reason === 'unknown_user')) {
        const { userId } = holder.session;
        holder.endSession(verdict.reason === 'unknown_user' ? { type: 'user_deleted', userId } : { type: 'user_sessions_revoked', userId, notBefore: holder.session.issuedAt });
        ended++;
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  logger.info('re-checked access after a broker reconnect', { grants, sessions: holders.length, ended });
}
