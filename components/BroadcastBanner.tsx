'use client';
/**
 * The operator's site-wide notice (a `broadcast` event, see the integration guide), shown above
 * the header on every page of a signed-in user. It arrives on the tab's socket without any
 * subscribe (RealtimeClient.onBroadcast); a newer notice replaces the one shown.
 *
 * Dismissing hides that notice for the rest of the tab's session: the server sends the latest
 * notice again to a socket that connects while it is retained (a reload, a reconnect), with the
 * same id, and a dismissed one must not come back. `critical` is an alert (announced at once by
 * screen readers); info and warning are a status (announced politely).
 */
import { useEffect, useState } from 'react';
import { useRealtimeContext } from '@/hooks/RealtimeProvider.tsx';
import type { BroadcastLevel } from '@/websocket-server/src/protocol/index.ts';
import { AlertIcon, CloseIcon, InfoIcon } from './icons.tsx';
import styles from './BroadcastBanner.module.css';

type Notice = { id: string; message: string; level: BroadcastLevel };

const DISMISSED_KEY = 'fonana.dismissedBroadcasts';
/** Ids remembered as dismissed; a handful is plenty, and sessionStorage must not grow. */
const MAX_DISMISSED = 20;

function dismissedIds(): string[] {
  try {
    const value: unknown = JSON.parse(sessionStorage.getItem(DISMISSED_KEY) ?? '[]');
    return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
  } catch {
    return [];
  }
}

function rememberDismissed(id: string): void {
  try {
    sessionStorage.setItem(DISMISSED_KEY, JSON.stringify([...dismissedIds().filter((v) => v !== id), id].slice(-MAX_DISMISSED)));
  } catch {
    // Storage unavailable (private mode quota): the notice may come back after a reload.
  }
}

export function BroadcastBanner() {
  const client = useRealtimeContext()?.client;
  const [notice, setNotice] = useState<Notice | null>(null);

  useEffect(() => {
    if (!client) return;
    return client.onBroadcast(({ message, level }, { id }) => {
      if (dismissedIds().includes(id)) return;
      setNotice({ id, message, level });
    });
  }, [client]);

  if (!notice) return null;
  const dismiss = () => {
    rememberDismissed(notice.id);
    setNotice(null);
  };
  return (
    <div
      className={`${styles.banner} ${styles[notice.level]}`}
      role={notice.level === 'critical' ? 'alert' : 'status'}
      data-testid="broadcast-banner"
      data-level={notice.level}
    >
      {notice.level === 'info' ? <InfoIcon className={styles.icon} /> : <AlertIcon className={styles.icon} />}
      <p className={styles.message}>{notice.message}</p>
      <button type="button" className={styles.close} onClick={dismiss} aria-label="Dismiss notice" data-testid="broadcast-dismiss">
        <CloseIcon />
      </button>
    </div>
  );
}
