/**
 * The outbox backlog, for GET /api/health and the admin page: `pending` rows not yet published
 * (growing while Redis, the WebSocket server or every relay is down), when the oldest of them
 * was written, the most attempts one of them has had and its last error, and `failed` rows
 * (refused for good by the publisher). One query over the unsent rows (index sentAt, id).
 */
import { db } from '@/lib/db.ts';

export interface OutboxBacklog {
  pending: number;
  failed: number;
  /** ISO time the oldest pending row was written, or null when none is pending. */
  oldestPendingAt: string | null;
  maxAttempts: number;
  lastError: string | null;
}

export async function outboxBacklog(): Promise<OutboxBacklog> {
  const [row] = await db().$queryRaw<
    Array<{ pending: bigint; failed: bigint; oldestPendingAt: Date | null; maxAttempts: number | null; lastError: string | null }>
  >`
    SELECT
      count(*) FILTER (WHERE "sentAt" IS NULL AND "failedAt" IS NULL) AS "pending",
      count(*) FILTER (WHERE "failedAt" IS NOT NULL) AS "failed",
      min("createdAt") FILTER (WHERE "sentAt" IS NULL AND "failedAt" IS NULL) AS "oldestPendingAt",
      max("attempts") FILTER (WHERE "sentAt" IS NULL AND "failedAt" IS NULL) AS "maxAttempts",
      (array_agg("lastError" ORDER BY "id" DESC) FILTER (WHERE "sentAt" IS NULL AND "lastError" IS NOT NULL))[1] AS "lastError"
    FROM "OutboxEvent"
    WHERE "sentAt" IS NULL`;
  return {
    pending: Number(row?.pending ?? 0),
    failed: Number(row?.failed ?? 0),
    oldestPendingAt: row?.oldestPendingAt?.toISOString() ?? null,
    maxAttempts: row?.maxAttempts ?? 0,
    lastError: row?.lastError ?? null,
  };
}
