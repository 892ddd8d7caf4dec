'use client';
/**
 * One conversation, live: new messages from the user's `messages_` channel (both sides' arrive
 * there, so the user's other tabs follow too), "… is typing" from the other participant's
 * `typing` events, and this side's typing sent as `typing` frames on the tab's socket.
 *
 * Typing: `typing: true` at most every TYPING_RESEND_MS while the user types, `typing: false`
 * after TYPING_IDLE_MS without a keystroke or when the field empties (the server allows 2 a
 * second per conversation). The indicator shows until a `typing: false`, a message from that
 * user, or TYPING_SHOWN_MS without another `typing: true`.
 */
import { useCallback, useEffect, useRef, useState, type FormEvent } from 'react';
import { useChannel } from '@/hooks/useChannel.ts';
import { useWebSocket } from '@/hooks/useWebSocket.ts';
import { channelName, MAX_MESSAGE_LENGTH, type DirectMessagePayload, type StreamPosition } from '@/websocket-server/src/protocol/index.ts';
import { timeAgo } from '../time.ts';
import { announceMessagesRead, mergeMessages, messagesApi, type Person } from './api.ts';

const TYPING_SHOWN_MS = 5_000;
const TYPING_RESEND_MS = 2_500;
const TYPING_IDLE_MS = 3_000;

export function Thread({
  me,
  other,
  conversationId,
  initialMessages,
  initialCursor,
  position,
  canWrite,
}: {
  me: { id: string; name: string };
  other: Person;
  conversationId: string;
  /** Newest first, as the API pages them. */
  initialMessages: DirectMessagePayload[];
  initialCursor: string | null;
  /** Where messages_{me} stood when the page read the messages. */
  position: StreamPosition | null;
  canWrite: boolean;
}) {
  const { client } = useWebSocket();
  const [messages, setMessages] = useState(() => mergeMessages([], initialMessages));
  const [cursor, setCursor] = useState(initialCursor);
  const [draft, setDraft] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [sending, setSending] = useState(false);
  const [otherTyping, setOtherTyping] = useState(false);
  const typingTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const sentTypingAt = useRef(0);
  const idleTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const bottom = useRef<HTMLDivElement>(null);

  const showTyping = useCallback((typing: boolean) => {
    clearTimeout(typingTimer.current);
    setOtherTyping(typing);
    if (typing) typingTimer.current = setTimeout(() => setOtherTyping(false), TYPING_SHOWN_MS);
  }, []);

  const markRead = useCallback(async () => {
    try {
      const { marked, unreadCount } = await messagesApi.markRead(conversationId);
      if (marked > 0) setMessages((list) => list.map((m) => (m.senderId !== me.id && m.readAt === null ? { ...m, readAt: new Date().toISOString() } : m)));
      announceMessagesRead(unreadCount);
    } catch {
      // The next message or visit marks them again.
    }
  }, [conversationId, me.id]);

  const reload = useCallback(async () => {
    try {
      const page = await messagesApi.messages(conversationId);
      setMessages((list) => mergeMessages(list, page.messages));
    } catch (e) {
      setError((e as Error).message);
    }
  }, [conversationId]);

  // Opening the thread reads what the other participant sent.
  useEffect(() => {
    void markRead();
  }, [markRead]);

  useEffect(() => () => {
    clearTimeout(typingTimer.current);
    clearTimeout(idleTimer.current);
  }, []);

  useEffect(() => {
    bottom.current?.scrollIntoView?.({ block: 'end' });
  }, [messages.length]);

  const channel = useChannel(
    channelName.messages(me.id),
    {
      message: ({ message }) => {
        if (message.conversationId !== conversationId) return;
        setMessages((list) => mergeMessages(list, [message]));
        if (message.senderId !== me.id) {
          showTyping(false);
          void markRead();
        }
      },
      typing: (data) => {
        if (data.conversationId === conversationId && data.userId === other.id) showTyping(data.typing);
      },
    },
    {
      since: position,
      // Not replayed (events lost, or none to continue from): take the newest page again.
      onSubscribed: ({ recovered }) => {
        if (recovered !== true) void reload();
      },
    },
  );

  const sendTyping = (typing: boolean) => {
    client?.send({ type: 'typing', conversationId, typing });
  };

  const onDraft = (value: string) => {
    setDraft(value);
    clearTimeout(idleTimer.current);
    if (value.trim() === '') {
      if (sentTypingAt.current !== 0) sendTyping(false);
      sentTypingAt.current = 0;
      return;
    }
    const now = Date.now();
    if (now - sentTypingAt.current >= TYPING_RESEND_MS) {
      sentTypingAt.current = now;
      sendTyping(true);
    }
    idleTimer.current = setTimeout(() => {
      sentTypingAt.current = 0;
      sendTyping(false);
    }, TYPING_IDLE_MS);
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const body = draft.trim();
    if (!body || sending) return;
    setSending(true);
    setError(null);
    try {
      const { message } = await messagesApi.send(other.id, body);
      setMessages((list) => mergeMessages(list, [message]));
      setDraft('');
      // The message itself clears the indicator on the other side.
      clearTimeout(idleTimer.current);
      sentTypingAt.current = 0;
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setSending(false);
    }
  };

  const loadOlder = async () => {
    if (!cursor) return;
    try {
      const page = await messagesApi.messages(conversationId, cursor);
      setMessages((list) => mergeMessages(list, page.messages));
      setCursor(page.nextCursor);
    } catch (e) {
      setError((e as Error).message);
    }
  };

  return (
    <section className="stack" data-testid="thread" data-channel={channel.status}>
      {cursor && (
        <button type="button" className="button ghost" onClick={() => void loadOlder()}>
          Older messages
        </button>
      )}
      <ol className="stack" style={{ listStyle: 'none', padding: 0, margin: 0 }} data-testid="thread-messages">
        {messages.length === 0 && <li className="muted">No messages yet. Say hello.</li>}
        {messages.map((m) => (
          <li
            key={m.id}
            className="card"
            data-testid="thread-message"
            data-mine={m.senderId === me.id}
            style={{ alignSelf: m.senderId === me.id ? 'flex-end' : 'flex-start', maxWidth: '80%' }}
          >
            <div style={{ whiteSpace: 'pre-wrap' }}>{m.body}</div>
            <div className="muted">
              {m.senderId === me.id ? 'You' : m.senderName} · {timeAgo(m.createdAt)}
              {m.senderId === me.id && m.readAt ? ' · read' : ''}
            </div>
          </li>
        ))}
      </ol>
      <p className="muted" data-testid="typing-indicator" aria-live="polite" style={{ minHeight: '1.2em', margin: 0 }}>
        {otherTyping ? `${other.name} is typing…` : ''}
      </p>
      <div ref={bottom} />
      {canWrite ? (
        <form className="row" onSubmit={(e) => void submit(e)}>
          <textarea
            aria-label="Message"
            data-testid="message-input"
            value={draft}
            maxLength={MAX_MESSAGE_LENGTH}
            rows={2}
            style={{ flex: 1 }}
            onChange={(e) => onDraft(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === 'Enter' && !e.shiftKey) {
                e.preventDefault();
                void submit(e);
              }
            }}
          />
          <button type="submit" className="button" disabled={sending || draft.trim() === ''} data-testid="message-send">
            Send
          </button>
        </form>
      ) : (
        <p className="muted" data-testid="thread-closed">
          You can read this conversation, but new messages need an active subscription between you and {other.name}.
        </p>
      )}
      {error && <p className="error">{error}</p>}
    </section>
  );
}
