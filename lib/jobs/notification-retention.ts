/**
 * The notification-retention job: deletes READ notifications older than the retention
 * (NOTIFICATION_RETENTION_DAYS, 30 by default), in batches; unread ones are never deleted,
 * however old. Nothing is published: a read notification's deletion changes no count (unread
 * counts only unread rows), and a list that still shows it loses it at its next fetch.
 *
 * Uses the index Notification(isRead, createdAt). Each DELETE re-checks `isRead AND createdAt <
 * cutoff`, so a row marked unread meanwhile (nothing does that today) would stay.
 */
import type { PrismaClient } from '../db/prisma-client.ts';
import type { Job, JobOutcome } from './scheduler.ts';

export const NOTIFICATION_RETENTION_JOB = 'notification-retention';
const DAY_MS = 24 * 60 * 60 * 1000;

export interface NotificationRetentionOptions {
  prisma: PrismaClient;
  /** Read notifications older than this many days are deleted (NOTIFICATION_RETENTION_DAYS, 30). */
  retentionDays?: number;
  /** Between runs (NOTIFICATION_RETENTION_INTERVAL_MS, 1 h). */
  intervalMs?: number;
  /** Rows per DELETE (1000). */
  batchSize?: number;
  now?: () => Date;
}

export function notificationRetentionJob(options: NotificationRetentionOptions): Job {
  const { prisma } = options;
  const retentionDays = options.retentionDays ?? 30;
  if (!(retentionDays > 0)) throw new Error('retentionDays must be positive');
  const batchSize = options.batchSize ?? 1_000;
  const now = options.now ?? (() => new Date());
  return {
    name: NOTIFICATION_RETENTION_JOB,
    intervalMs: options.intervalMs ?? 3_600_000,
    async run(signal): Promise<JobOutcome> {
      const cutoff = new Date(now().getTime() - retentionDays * DAY_MS);
      const where = { isRead: true, createdAt: { lt: cutoff } };
      let deleted = 0;
      let batches = 0;
      for (;;) {
        const ids = await prisma.notification.findMany({ where, orderBy: { createdAt: 'asc' }, take: batchSize, select: { id: true } });
        if (ids.length === 0) break;
        const { count } = await prisma.notification.deleteMany({ where: { ...where, id: { in: ids.map((r) => r.id) } } });
        deleted += count;
        batches += 1;
        if (ids.length < batchSize || signal.aborted) break;
      }
      return { deleted, batches };
    },
  };
}
