/**
 * Direct messages between a subscriber and a creator.
 *
 * **Who may write to whom.** Two users may message each other while one of them holds an active
 * subscription (ACTIVE and unexpired, any tier) to the other, who is then a creator: a subscriber
 * writes to the creators they subscribe to, a creator writes to their subscribers. Anyone else
 * is refused with 403. The rule is checked at each send; a conversation stays readable by its two
 * participants after the subscription ends (its history is theirs), but no new message goes in
 * until one subscribes again.
 *
 * A pair of users has one conversation, created by its first message. The message row, the
 * conversation's `lastMessageAt` and the `message` event on both participants' `messages_`
 * channels are written in one transaction (the outbox, lib/realtime.ts). Typing indicators are
 * not here: the WebSocket server forwards them from socket to socket (messaging/typing.ts).
 */
import { channelName, MAX_MESSAGE_LENGTH, type DirectMessagePayload, type StreamPosition } from '@/websocket-server/src/protocol/index.ts';
import type { Prisma } from '../../generated/prisma/client.ts';
import { db } from '../db.ts';
import { forbidden, notFound, unprocessable } from '../api/errors.ts';
import { channelPosition, publishDirectMessage, type Tx } from '../realtime.ts';
import { activeSubscriptionWhere } from './subscribers.ts';

export { MAX_MESSAGE_LENGTH };

export const MESSAGES_PAGE = { default: 50, max: 100 } as const;
export const CONVERSATIONS_PAGE = { default: 20, max: 50 } as const;

/** A pair's stored order: userAId < userBId in byte order (the migration's trigger checks it). */
export function orderedPair(a: string, b: string): [string, string] {
  return a < b ? [a, b] : [b, a];
}

/** The rule above: one of the two actively subscribes to the other. */
export async function mayMessage(senderId: string, recipientId: string, tx: Tx = db()): Promise<boolean> {
  if (senderId === recipientId) return false;
  const active = activeSubscriptionWhere();
  const count = await tx.subscription.count({
    where: {
      OR: [
        { subscriberId: senderId, creatorId: recipientId, ...active },
        { subscriberId: recipientId, creatorId: senderId, ...active },
      ],
    },
  });
  return count > 0;
}

type MessageRow = { id: string; conversationId: string; senderId: string; body: string; createdAt: Date; readAt: Date | null };
type Conversation = { id: string; userAId: string; userBId: string };
type Person = { id: string; name: string; isCreator: boolean };

export function toDirectMessagePayload(row: MessageRow, conversation: Conversation, senderName: string): DirectMessagePayload {
  return {
    id: row.id,
    conversationId: row.conversationId,
    senderId: row.senderId,
    senderName: senderName.slice(0, 200),
    recipientId: row.senderId === conversation.userAId ? conversation.userBId : conversation.userAId,
    body: row.body,
    createdAt: row.createdAt.toISOString(),
    readAt: row.readAt?.toISOString() ?? null,
  };
}

const personSelect = { id: true, name: true, isCreator: true } as const;
const otherOf = (conversation: Conversation & { userA: Person; userB: Person }, userId: string): Person =>
  conversation.userAId === userId ? conversation.userB : conversation.userA;

function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'P2002';
}

/**
 * Sends `body` from `senderId` to `recipientId`, creating their conversation with the first
 * message. 422 to oneself, 404 for an unknown recipient, 403 when the rule does not allow the
 * pair.
 */
export async function sendMessage(senderId: string, recipientId: string, body: string) {
  if (recipientId === senderId) throw unprocessable('you cannot message yourself');
  const people = await db().user.findMany({ where: { id: { in: [senderId, recipientId] } }, select: personSelect });
  const sender = people.find((p) => p.id === senderId);
  const recipient = people.find((p) => p.id === recipientId);
  if (!recipient) throw notFound('no such user');
  if (!sender) throw notFound('no such user'); // the sender's account was deleted meanwhile
  if (!(await mayMessage(senderId, recipientId))) {
    throw forbidden('direct messages are between a creator and their active subscribers');
  }
  const [userAId, userBId] = orderedPair(senderId, recipientId);
  const write = () =>
    db().$transaction(async (tx) => {
      const now = new Date();
      const existing = await tx.conversation.findUnique({ where: { userAId_userBId: { userAId, userBId } }, select: { id: true } });
      const conversation = existing
        ? await tx.conversation.update({ where: { id: existing.id }, data: { lastMessageAt: now } })
        : await tx.conversation.create({ data: { userAId, userBId, createdAt: now, lastMessageAt: now } });
      const row = await tx.message.create({ data: { conversationId: conversation.id, senderId, body, createdAt: now } });
      const message = toDirectMessagePayload(row, conversation, sender.name);
      await publishDirectMessage(tx, message);
      return { message, conversation: { id: conversation.id, created: existing === null } };
    });
  try {
    return await write();
  } catch (error) {
    // Both sides wrote their first message at once: the other created the conversation.
    if (isUniqueViolation(error)) return write();
    throw error;
  }
}

/** Unread messages addressed to `userId`, over all their conversations. */
export function unreadMessagesCount(userId: string, tx: Tx = db()): Promise<number> {
  return tx.message.count({
    where: { readAt: null, senderId: { not: userId }, conversation: { OR: [{ userAId: userId }, { userBId: userId }] } },
  });
}

const participantOf = (userId: string): Prisma.ConversationWhereInput => ({ OR: [{ userAId: userId }, { userBId: userId }] });

/** Is `conversationId` one of `userId`'s conversations? */
async function ownConversation(userId: string, conversationId: string, tx: Tx = db()) {
  const conversation = await tx.conversation.findFirst({
    where: { id: conversationId, ...participantOf(userId) },
    include: { userA: { select: personSelect }, userB: { select: personSelect } },
  });
  // Someone else's conversation is as good as missing.
  if (!conversation) throw notFound('no such conversation');
  return conversation;
}

/**
 * The user's conversations, the most recently active first, each with the other participant,
 * its last message and how many of its messages the user has not read; `unreadCount` is the
 * total over all conversations. The first page (no cursor) carries `position`, the position of
 * `messages_{userId}` read BEFORE the rows (see listNotifications).
 */
export async function listConversations(userId: string, opts: { cursor?: string | undefined; limit: number }) {
  const position: StreamPosition | null | undefined = opts.cursor ? undefined : await channelPosition(channelName.messages(userId));
  if (opts.cursor && (await db().conversation.count({ where: { id: opts.cursor, ...participantOf(userId) } })) === 0) {
    throw unprocessable('unknown cursor');
  }
  const rows = await db().conversation.findMany({
    where: participantOf(userId),
    orderBy: [{ lastMessageAt: 'desc' }, { id: 'desc' }],
    take: opts.limit + 1,
    ...(opts.cursor ? { cursor: { id: opts.cursor }, skip: 1 } : {}),
    include: {
      userA: { select: personSelect },
      userB: { select: personSelect },
      messages: { orderBy: [{ createdAt: 'desc' }, { id: 'desc' }], take: 1 },
    },
  });
  const page = rows.slice(0, opts.limit);
  const unread = await db().message.groupBy({
    by: ['conversationId'],
    where: { conversationId: { in: page.map((c) => c.id) }, readAt: null, senderId: { not: userId } },
    _count: { _all: true },
  });
  const unreadOf = new Map(unread.map((u) => [u.conversationId, u._count._all]));
  const people = (c: (typeof page)[number]) => new Map([c.userA, c.userB].map((p) => [p.id, p]));
  return {
    conversations: page.map((c) => {
      const last = c.messages[0];
      return {
        id: c.id,
        otherUser: otherOf(c, userId),
        lastMessage: last ? toDirectMessagePayload(last, c, people(c).get(last.senderId)?.name ?? '') : null,
        lastMessageAt: c.lastMessageAt.toISOString(),
        unreadCount: unreadOf.get(c.id) ?? 0,
      };
    }),
    nextCursor: rows.length > opts.limit ? (page.at(-1)?.id ?? null) : null,
    unreadCount: await unreadMessagesCount(userId),
    ...(position === undefined ? {} : { position }),
  };
}

/**
 * One conversation's messages, newest first, `limit` per page; `cursor` is the oldest message
 * id of the previous page. The first page carries `position` (as listConversations). 404 for a
 * conversation the user takes no part in.
 */
export async function conversationMessages(userId: string, conversationId: string, opts: { cursor?: string | undefined; limit: number }) {
  const position: StreamPosition | null | undefined = opts.cursor ? undefined : await channelPosition(channelName.messages(userId));
  const conversation = await ownConversation(userId, conversationId);
  if (opts.cursor && (await db().message.count({ where: { id: opts.cursor, conversationId } })) === 0) throw unprocessable('unknown cursor');
  const rows = await db().message.findMany({
    where: { conversationId },
    orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
    take: opts.limit + 1,
    ...(opts.cursor ? { cursor: { id: opts.cursor }, skip: 1 } : {}),
  });
  const page = rows.slice(0, opts.limit);
  const names = new Map([conversation.userA, conversation.userB].map((p) => [p.id, p.name]));
  return {
    conversation: { id: conversation.id, otherUser: otherOf(conversation, userId) },
    messages: page.map((row) => toDirectMessagePayload(row, conversation, names.get(row.senderId) ?? '')),
    nextCursor: rows.length > opts.limit ? (page.at(-1)?.id ?? null) : null,
    ...(position === undefined ? {} : { position }),
  };
}

/**
 * Marks every message the other participant sent in the conversation as read by `userId`;
 * answers how many it marked and the user's unread total afterwards.
 */
export async function markConversationRead(userId: string, conversationId: string) {
  await ownConversation(userId, conversationId);
  return db().$transaction(async (tx) => {
    const { count } = await tx.message.updateMany({
      where: { conversationId, senderId: { not: userId }, readAt: null },
      data: { readAt: new Date() },
    });
    return { conversationId, marked: count, unreadCount: await unreadMessagesCount(userId, tx) };
  });
}

/**
 * The people the rule lets `userId` write to now: the creators they actively subscribe to and
 * their own active subscribers, by name.
 */
export async function messageableContacts(userId: string): Promise<Person[]> {
  const active = activeSubscriptionWhere();
  const [following, followers] = await Promise.all([
    db().subscription.findMany({ where: { subscriberId: userId, ...active }, select: { creator: { select: personSelect } } }),
    db().subscription.findMany({ where: { creatorId: userId, ...active }, select: { subscriber: { select: personSelect } } }),
  ]);
  const byId = new Map<string, Person>();
  for (const { creator } of following) byId.set(creator.id, creator);
  for (const { subscriber } of followers) byId.set(subscriber.id, subscriber);
  return [...byId.values()].sort((a, b) => a.name.localeCompare(b.name));
}
