/**
 * The Directory on PostgreSQL. Most reads go through Prisma; the two made on every connect
 * (the session check and the unread-notifications snapshot a `notifications_` subscribe sends)
 * are single SQL statements on the same pool, as named (prepared) queries: through Prisma they
 * cost ~1,900 µs of CPU per connection (query compilation and interpretation, and the snapshot's
 * BEGIN / SET TRANSACTION / two queries / COMMIT: five round trips), measured by
 * bench/compare/connect-costs.ts on the connect scenario. One statement reads one snapshot, so
 * the list and the count still agree without a transaction.
 */
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient } from '../../../generated/prisma/client.ts';
import type { ConversationParticipants, Directory, PostAccessFacts, SessionState, SubscriptionFacts } from './directory.ts';
import { toNotificationPayload, type NotificationPayload } from '../protocol/index.ts';

export class PrismaDirectory implements Directory {
  readonly #prisma: PrismaClient;
  readonly #pool: pg.Pool;

  constructor(databaseUrl: string, options: { poolMax: number; connectTimeoutMs: number; statementTimeoutMs: number }) {
    // Handshakes and subscribes are short point lookups; a small pool is plenty per process.
    // Both timeouts make a slow or unreachable database fail a handshake fast (close 1013)
    // instead of queueing handshakes behind it without bound.
    this.#pool = new pg.Pool({
      connectionString: databaseUrl,
      max: options.poolMax,
      idleTimeoutMillis: 10_000,
      connectionTimeoutMillis: options.connectTimeoutMs,
      // Server-side bound on each statement, and a client-side one in case the server is gone.
      statement_timeout: options.statementTimeoutMs,
      query_timeout: options.statementTimeoutMs + 1_000,
    });
    // An idle client's error (the database restarted) must not end the process; the next query
    // gets a fresh connection and fails or succeeds on its own.
    this.#pool.on('error', () => {});
    this.#prisma = new PrismaClient({ adapter: new PrismaPg(this.#pool) });
  }

  async sessionState(userId: string, sessionId: string | undefined): Promise<SessionState> {
    const { rows } = await this.#pool.query<{ sessionsValidAfter: Date | null; revoked: boolean; isCreator: boolean }>({
      name: 'ws_session_state',
      text: SESSION_STATE_SQL,
      values: [userId, sessionId ?? null],
    });
    const user = rows[0];
    if (!user) return { exists: false, sessionsValidAfter: null, sessionRevoked: false, isCreator: false };
    return { exists: true, sessionsValidAfter: user.sessionsValidAfter, sessionRevoked: user.revoked, isCreator: user.isCreator };
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
    const { rows } = await this.#pool.query<UnreadRow>({ name: 'ws_unread_notifications', text: UNREAD_SQL, values: [userId, limit] });
    // Always one row at least (the count); a row without an id is "no notification".
    const notifications = rows.filter((row): row is UnreadRow & { id: string } => row.id !== null).map((row) => toNotificationPayload({ ...row, data: row.data ?? undefined }));
    return { notifications, count: rows[0]?.count ?? 0 };
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
    // On the pool, not through Prisma: /health must not wait for Prisma's first-query warm-up
    // when nothing has used it yet (the connect path no longer does).
    await this.#pool.query('SELECT 1');
  }

  async close(): Promise<void> {
    await this.#prisma.$disconnect();
    await this.#pool.end();
  }
}

// Timestamps are `timestamp(3)` (no zone) holding UTC, as Prisma writes them; `AT TIME ZONE 'UTC'`
// makes them `timestamptz`, which pg reads as the right instant whatever the process's TZ.

/** The user, their "sign out everywhere" cutoff, and whether this `sid` was signed out. */
const SESSION_STATE_SQL = `SELECT u."sessionsValidAfter" AT TIME ZONE 'UTC' AS "sessionsValidAfter", u."isCreator",
  EXISTS (SELECT 1 FROM "RevokedSession" r WHERE r."userId" = u.id AND r."sessionId" = $2) AS revoked
FROM "User" u WHERE u.id = $1`;

type UnreadRow = { id: string | null; type: string; title: string; message: string; isRead: boolean; data: unknown; createdAt: Date; count: number };

/** The newest `$2` unread notifications and the unread count, in one statement (one snapshot). */
const UNREAD_SQL = `SELECT n.id, n.type, n.title, n.message, n."isRead", n.data, n."createdAt", c.count
FROM (SELECT count(*)::int AS count FROM "Notification" WHERE "userId" = $1 AND "isRead" = false) c
LEFT JOIN LATERAL (
  SELECT id, type, title, message, "isRead", data, "createdAt" AT TIME ZONE 'UTC' AS "createdAt"
  FROM "Notification" WHERE "userId" = $1 AND "isRead" = false
  ORDER BY "createdAt" DESC, id DESC LIMIT $2
) n ON true
ORDER BY n."createdAt" DESC, n.id DESC`;
