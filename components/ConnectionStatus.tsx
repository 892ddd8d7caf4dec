'use client';
/** A dot showing the tab's socket state; "live" or why it is not (updates then come by polling). */
import { useWebSocket } from '@/hooks/useWebSocket.ts';
import styles from './ConnectionStatus.module.css';

const LABELS = { open: 'live', connecting: 'connecting…', reconnecting: 'reconnecting…', closed: 'offline' } as const;

export function ConnectionStatus() {
  const { state, attempt, closedReason, retry } = useWebSocket();
  const title =
    state === 'open'
      ? 'Real-time updates are on'
      : state === 'reconnecting'
        ? `Reconnecting (attempt ${attempt}); notifications are polled meanwhile`
        : state === 'closed'
          ? `Not connected (${closedReason ?? 'closed'}); notifications are polled`
          : 'Connecting';
  return (
    <span className={`${styles.status} ${styles[state]}`} data-testid="connection-status" data-state={state} title={title}>
      <span className={styles.dot} />
      {LABELS[state]}
      {state === 'closed' && closedReason === 'gave_up' && (
        <button type="button" className={styles.retry} onClick={retry}>
          retry
        </button>
      )}
    </span>
  );
}
