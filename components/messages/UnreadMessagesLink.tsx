'use client';
/**
 * The header's link to the conversations, with the number of unread direct messages. The count
 * comes from GET /api/messages (on mount, when the tab becomes visible again, and whenever the
 * channel could not replay what it missed); each `message` from someone else on the user's
 * `messages_` channel adds one, and the thread page's "read" answer sets the new total.
 */
import Link from 'next/link';
import { useCallback, useEffect, useRef, useState } from 'react';
import { useChannel } from '@/hooks/useChannel.ts';
import { channelName } from '@/websocket-server/src/protocol/index.ts';
import { MESSAGES_READ_EVENT, messagesApi, type MessagesReadDetail } from './api.ts';

export function UnreadMessagesLink({ userId }: { userId: string }) {
  const [unread, setUnread] = useState(0);
  const seen = useRef(new Set<string>());
  const seq = useRef(0);

  const refresh = useCallback(async () => {
    const mine = ++seq.current;
    try {
      const page = await messagesApi.conversations(1);
      if (mine === seq.current) setUnread(page.unreadCount);
    } catch {
      // Signed out or offline: keep the last count.
    }
  }, []);

  useEffect(() => {
    void refresh();
    const onRead = (event: Event) => {
      seq.current++; // an answer in flight predates this one
      setUnread((event as CustomEvent<MessagesReadDetail>).detail.unreadCount);
    };
    const onVisible = () => {
      if (document.visibilityState === 'visible') void refresh();
    };
    window.addEventListener(MESSAGES_READ_EVENT, onRead);
    document.addEventListener('visibilitychange', onVisible);
    return () => {
      window.removeEventListener(MESSAGES_READ_EVENT, onRead);
      document.removeEventListener('visibilitychange', onVisible);
    };
  }, [refresh]);

  const channel = useChannel(
    channelName.messages(userId),
    {
      message: ({ message }) => {
        if (message.senderId === userId || message.readAt !== null || seen.current.has(message.id)) return;
        seen.current.add(message.id);
        setUnread((count) => count + 1);
      },
    },
    {
      // Replayed: every message since was counted. Otherwise (first subscribe, or events lost) ask.
      onSubscribed: ({ recovered }) => {
        if (recovered !== true) void refresh();
      },
    },
  );

  return (
    <Link href="/messages" data-testid="messages-link" data-channel={channel.status} aria-label={`Messages, ${unread} unread`}>
      Messages
      {/* Not `hidden`: .badge sets a display, which wins over the attribute. */}
      <span className="badge" data-testid="messages-unread" data-count={unread} style={{ marginLeft: 6, display: unread === 0 ? 'none' : undefined }}>
        {unread > 99 ? '99+' : unread}
      </span>
    </Link>
  );
}
