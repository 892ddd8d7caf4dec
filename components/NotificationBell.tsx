'use client';
/** The header bell: live unread count, a dropdown of recent notifications, read and clear. */
import Link from 'next/link';
import { useEffect, useRef, useState } from 'react';
import { useNotifications } from '@/hooks/useNotifications.ts';
import type { NotificationPayload } from '@/websocket-server/src/protocol/index.ts';
import { BellIcon } from './icons.tsx';
import { timeAgo } from './time.ts';
import styles from './NotificationBell.module.css';

function postLink(notification: NotificationPayload): string | null {
  const data = notification.data as { postId?: unknown } | undefined;
  return typeof data?.postId === 'string' ? `/posts/${data.postId}` : null;
}

export function NotificationBell() {
  const n = useNotifications();
  const [open, setOpen] = useState(false);
  const wrap = useRef<HTMLDivElement>(null);

  // Close on a click outside or on Escape.
  useEffect(() => {
    if (!open) return;
    const onClick = (event: MouseEvent) => {
      if (!wrap.current?.contains(event.target as Node)) setOpen(false);
    };
    const onKey = (event: KeyboardEvent) => {
      if (event.key === 'Escape') setOpen(false);
    };
    document.addEventListener('mousedown', onClick);
    document.addEventListener('keydown', onKey);
    return () => {
      document.removeEventListener('mousedown', onClick);
      document.removeEventListener('keydown', onKey);
    };
  }, [open]);

  return (
    <div className={styles.wrap} ref={wrap}>
      <button
        type="button"
        className={styles.bell}
        aria-label={`Notifications, ${n.unreadCount} unread`}
        aria-expanded={open}
        data-testid="bell-button"
        data-channel={n.channel.status}
        data-mode={n.mode}
        onClick={() => setOpen((v) => !v)}
      >
        {/* bell-count always carries the number (data-count); the badge exists only above 0 (a
            `hidden` attribute lost to the badge's display: inline-flex and showed a red 0). */}
        <span data-testid="bell-count" data-count={n.unreadCount}>
          <BellIcon width={18} height={18} style={{ display: 'block' }} />
          {n.unreadCount > 0 && (
            <span className={styles.count} data-testid="bell-badge">
              {n.unreadCount > 99 ? '99+' : n.unreadCount}
            </span>
          )}
        </span>
      </button>
      {open && (
        <div className={styles.panel} role="dialog" aria-label="Notifications" data-testid="bell-panel">
          <div className={styles.panelHead}>
            <strong>Notifications</strong>
            <button type="button" className="button ghost" onClick={() => void n.markAllRead()} disabled={n.unreadCount === 0} data-testid="mark-all-read">
              Mark all read
            </button>
            <button type="button" className="button ghost" onClick={() => void n.clear()} disabled={n.items.length === 0} data-testid="clear-all">
              Clear
            </button>
          </div>
          {n.items.length === 0 ? (
            <div className={styles.empty}>{n.loaded ? 'Nothing yet.' : 'Loading…'}</div>
          ) : (
            <ul className={styles.list} data-testid="bell-list">
              {n.items.map((item) => {
                const href = postLink(item);
                return (
                  <li
                    key={item.id}
                    className={`${styles.item} ${item.isRead ? '' : styles.unread}`}
                    data-testid="bell-item"
                    data-read={item.isRead}
                  >
                    <div className={styles.body}>
                      <div className={styles.title}>{item.title}</div>
                      <div className={styles.message}>
                        {href ? (
                          <Link href={href} onClick={() => setOpen(false)}>
                            {item.message}
                          </Link>
                        ) : (
                          item.message
                        )}
                      </div>
                      <div className={styles.time}>{timeAgo(item.createdAt)}</div>
                    </div>
                    {!item.isRead && (
                      <button type="button" className="button ghost" onClick={() => void n.markRead(item.id)} data-testid="mark-read">
                        Mark read
                      </button>
                    )}
                  </li>
                );
              })}
            </ul>
          )}
          {n.nextCursor && (
            <button type="button" className={styles.more} onClick={() => void n.loadMore()}>
              Older notifications
            </button>
          )}
          <div className={styles.mode} data-testid="bell-mode">
            {n.mode === 'websocket' ? 'Live' : 'Checking periodically (real-time connection unavailable)'}
            {n.error && <span className="error"> · {n.error}</span>}
          </div>
        </div>
      )}
    </div>
  );
}
