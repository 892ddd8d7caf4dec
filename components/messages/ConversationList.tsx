'use client';
/**
 * The user's conversations, kept live by their `messages_` channel: a new message moves its
 * conversation to the top with its text and, when someone else sent it, one more unread. A
 * message of a conversation not on the list yet (or events lost) reloads the list.
 */
import Link from 'next/link';
import { useCallback, useState } from 'react';
import { useChannel } from '@/hooks/useChannel.ts';
import { channelName, type StreamPosition } from '@/websocket-server/src/protocol/index.ts';
import { timeAgo } from '../time.ts';
import { messagesApi, type ConversationSummary } from './api.ts';

export function ConversationList({
  userId,
  initial,
  position,
}: {
  userId: string;
  initial: ConversationSummary[];
  position: StreamPosition | null;
}) {
  const [conversations, setConversations] = useState(initial);

  const reload = useCallback(async () => {
    try {
      setConversations((await messagesApi.conversations()).conversations);
    } catch {
      // Keep what is shown.
    }
  }, []);

  useChannel(
    channelName.messages(userId),
    {
      message: ({ message }) => {
        // Handlers are read afresh on every render, so `conversations` is the shown list.
        if (!conversations.some((c) => c.id === message.conversationId)) {
          void reload();
          return;
        }
        setConversations((list) => {
          const current = list.find((c) => c.id === message.conversationId);
          if (!current || current.lastMessage?.id === message.id) return list;
          const updated: ConversationSummary = {
            ...current,
            lastMessage: message,
            lastMessageAt: message.createdAt,
            unreadCount: current.unreadCount + (message.senderId !== userId && message.readAt === null ? 1 : 0),
          };
          return [updated, ...list.filter((c) => c.id !== current.id)];
        });
      },
    },
    {
      since: position,
      onSubscribed: ({ recovered }) => {
        if (recovered === false) void reload();
      },
    },
  );

  if (conversations.length === 0) return <p className="muted">No conversations yet.</p>;
  return (
    <ul className="stack" style={{ listStyle: 'none', padding: 0 }} data-testid="conversations">
      {conversations.map((c) => (
        <li key={c.id} className="card" data-testid="conversation" data-unread={c.unreadCount}>
          <div className="row">
            <Link href={`/messages/${c.id}`}>
              <strong>{c.otherUser.name}</strong>
            </Link>
            {c.otherUser.isCreator && <span className="badge">creator</span>}
            <span className="spacer" />
            {c.unreadCount > 0 && <span className="badge">{c.unreadCount} unread</span>}
            <span className="muted">{timeAgo(c.lastMessageAt)}</span>
          </div>
          {c.lastMessage && (
            <p className="muted" style={{ margin: '6px 0 0' }}>
              {c.lastMessage.senderId === userId ? 'You: ' : ''}
              {c.lastMessage.body.length > 120 ? `${c.lastMessage.body.slice(0, 119)}…` : c.lastMessage.body}
            </p>
          )}
        </li>
      ))}
    </ul>
  );
}
