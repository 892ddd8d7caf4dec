import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../../../generated/prisma/client.ts';
import type { ConversationParticipants, Directory, PostAccessFacts, SessionState, SubscriptionFacts } from './directory.ts';
import { toNotificationPayload, type NotificationPayload } from '../protocol/index.ts';

export class PrismaDirectory implements Directory {
  readonly #prisma: PrismaClient;

  constructor(databaseUrl: string, options: { poolMax: number; connectTimeoutMs: number; statementTimeoutMs: number }) {
    // Handshakes and subscribes are short point lookups; a small pool is plenty per process.
    // Both timeouts make a slow or unreachable database fail a handshake fast (close 1013)
    // instead of queueing handshakes behind it without bound.
    const adapter = new PrismaPg({
      connectionString: databaseUrl,
      max: options.poolMax,
      idleTimeoutMillis: 10_000,
      connectionTimeoutMillis: options.connectTimeoutMs,
      // Server-side bound on each statement, and a client-side one in case the server is gone.
      statement_timeout: options.statementTimeoutMs,
      query_timeout: options.statementTimeoutMs + 1_000,
    });
    this.#prisma = new PrismaClient({ adapter });
  }

  async sessionState(userId: string, sessionId: string | undefined): Promise<SessionState> {
    const user = await this.#prisma.user.findUnique({
      where: { id: userId },
      select: {
        sessionsValidAfter: true,
        ...(sessionId ? { revokedSessions: { where: { sessionId }, select: { sessionId: true }, take: 1 } } : {}),
      },
    });
    if (!user) return { exists: false, sessionsValidAfter: null, sessionRevoked: false };
    const revoked = 'revokedSessions' in user && Array.isArray(user.revokedSessions) && user.revokedSessions.length > 0;
    return { exists: true, sessionsValidAfter: user.sessionsValidAfter, sessionRevoked: revoked };
  }

  async creatorExists(creatorId: string): Promise<boolean> {
    const user = await this.#prisma.user.findUnique({ where: { id: creatorId }, select: { isCreator: true } });
    return user?.isCreator === true;
  }

  async findPost(postId: string): Promise<PostAccessFacts | null> {
    return this.#prisma.post.findUnique({
      where: { id: postId },
      select: { id: true, authorId: true, isLocked: true, requiredTier: true },
    });
  }

  async findSubscription(subscriberId: string, creatorId: string): Promise<SubscriptionFacts | null> {
    return this.#prisma.subscription.findUnique({
      where: { subscriberId_creatorId: { subscriberId, creatorId } },
      select: { status: true, tier: true, expiresAt: true },
    });
  }

  async hasPurchased(userId: string, postId: string): Promise<boolean> {
    const purchase = await this.#prisma.postPurchase.findUnique({
      where: { userId_postId: { userId, postId } },
      select: { id: true },
    });
    return purchase !== null;
  }

  async unreadNotifications(userId: string, limit: number): Promise<{ notifications: NotificationPayload[]; count: number }> {
    const where = { userId, isRead: false };
    // One snapshot: a list and a count read at different moments could disagree.
    const [rows, count] = await this.#prisma.$transaction(
      [this.#prisma.notification.findMany({ where, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }], take: limit }), this.#prisma.notification.count({ where })],
      { isolationLevel: 'RepeatableRead' },
    );
    return { notifications: rows.map(toNotificationPayload), count };
  }

  async notificationsAfter(userId: string, lastId: string, limit: number): Promise<{ notifications: NotificationPayload[]; unreadCount: number }> {
    return this.#prisma.$transaction(
      async (tx) => {
        const last = await tx.notification.findFirst({ where: { id: lastId, userId }, select: { createdAt: true } });
        const rows = await tx.notification.findMany({
          where: last ? { userId, createdAt: { gt: last.createdAt } } : { userId, isRead: false },
          orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
          take: limit,
        });
        const unreadCount = await tx.notification.count({ where: { userId, isRead: false } });
        return { notifications: rows.map(toNotificationPayload), unreadCount };
      },
      { isolationLevel: 'RepeatableRead' },
    );
  }

  async conversationParticipants(conversationId: string): Promise<ConversationParticipants | null> {
    const conversation = await this.#prisma.conversation.findUnique({
      where: { id: conversationId },
      select: { userAId: true, userBId: true },
    });
    return conversation ? [conversation.userAId, conversation.userBId] : null;
  }

  async ping(): Promise<void> {
    await this.#prisma.$queryRaw`SELECT 1`;
  }

  async close(): Promise<void> {
    await this.#prisma.$disconnect();
  }
}
