/**
 * Browser-side calls to the direct-message routes (app/api/messages), typed with the shapes they
 * answer, and the one browser event the message components share within a tab.
 */
import type { DirectMessagePayload, StreamPosition } from '@/websocket-server/src/protocol/index.ts';

export type Person = { id: string; name: string; isCreator: boolean };

export type ConversationSummary = {
  id: string;
  otherUser: Person;
  lastMessage: DirectMessagePayload | null;
  lastMessageAt: string;
  unreadCount: number;
};

export type ConversationPage = {
  conversations: ConversationSummary[];
  nextCursor: string | null;
  unreadCount: number;
  position?: StreamPosition | null;
};

export type MessagePage = {
  conversation: { id: string; otherUser: Person };
  messages: DirectMessagePayload[];
  nextCursor: string | null;
  position?: StreamPosition | null;
};

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(path, {
    method,
    credentials: 'same-origin',
    cache: 'no-store',
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  const data = (await response.json().catch(() => null)) as { message?: string } | null;
  if (!response.ok) throw new Error(data?.message ?? `${method} ${path} answered ${response.status}`);
  return data as T;
}

export const messagesApi = {
  conversations: (limit = 20) => call<ConversationPage>('GET', `/api/messages?limit=${limit}`),
  messages: (conversationId: string, cursor?: string) =>
    call<MessagePage>('GET', `/api/messages/${encodeURIComponent(conversationId)}${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ''}`),
  send: (recipientId: string, body: string) =>
    call<{ message: DirectMessagePayload; conversation: { id: string; created: boolean } }>('POST', '/api/messages', { recipientId, body }),
  markRead: (conversationId: string) =>
    call<{ conversationId: string; marked: number; unreadCount: number }>('POST', `/api/messages/${encodeURIComponent(conversationId)}/read`),
};

/** Dispatched on window after this tab marked messages read: the header takes the new total. */
export const MESSAGES_READ_EVENT = 'fonana:messages-read';
export type MessagesReadDetail = { unreadCount: number };

export function announceMessagesRead(unreadCount: number): void {
  window.dispatchEvent(new CustomEvent<MessagesReadDetail>(MESSAGES_READ_EVENT, { detail: { unreadCount } }));
}

/** Oldest first, each id once. */
export function mergeMessages(list: DirectMessagePayload[], more: DirectMessagePayload[]): DirectMessagePayload[] {
  const byId = new Map(list.map((m) => [m.id, m]));
  for (const message of more) byId.set(message.id, { ...byId.get(message.id), ...message });
  return [...byId.values()].sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
}
