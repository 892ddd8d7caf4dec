/**
 * The subscription-expiry job: ACTIVE subscriptions whose `expiresAt` has passed become EXPIRED,
 * in batches, each batch one transaction that also enqueues `entitlement_changed`
 * (cause `subscription_expired`, one subject per subscription, 100 per control message) through
 * the outbox, so every WebSocket node re-checks the subscribers' post channels and unsubscribes
 * (reason `forbidden`) the sockets that lost access.
 *
 * Access itself never waited for this job: the app and the WebSocket server both treat an
 * ACTIVE row past `expiresAt` as not granting (subscriptionGrants), and a socket's grant carries
 * a deadline at `expiresAt`. The job makes the database say so (subscriber counts, the creator
 * page, anything that reads `status`) and announces it, which also reaches sockets whose grant
 * was computed before `expiresAt` was moved earlier.
 *
 * Uses the index Subscription(status, expiresAt). Each UPDATE re-checks `status = ACTIVE AND
 * expiresAt <= now`, so a subscription renewed between the SELECT and the UPDATE is left alone.
 */
import type { PrismaClient } from '../db/prisma-client.ts';
import { announceEntitlementChange } from '../realtime.ts';
import type { Job, JobOutcome } from './scheduler.ts';

export const SUBSCRIPTION_EXPIRY_JOB = 'subscription-expiry';

export interface SubscriptionExpiryOptions {
  prisma: PrismaClient;
  /** Between runs (SUBSCRIPTION_EXPIRY_INTERVAL_MS, 60 s). */
  intervalMs?: number;
  /** Rows per transaction (500). */
  batchSize?: number;
  /** The clock (tests move it); defaults to the system's. */
  now?: () => Date;
}

export function subscriptionExpiryJob(options: SubscriptionExpiryOptions): Job {
  const { prisma } = options;
  const batchSize = options.batchSize ?? 500;
  const now = options.now ?? (() => new Date());
  return {
    name: SUBSCRIPTION_EXPIRY_JOB,
    intervalMs: options.intervalMs ?? 60_000,
    async run(signal): Promise<JobOutcome> {
      let expired = 0;
      let batches = 0;
      for (;;) {
        const at = now();
        const flipped = await prisma.$transaction(async (tx) => {
          const due = await tx.subscription.findMany({
            where: { status: 'ACTIVE', expiresAt: { lte: at } },
            orderBy: { expiresAt: 'asc' },
            take: batchSize,
            select: { id: true },
          });
          if (due.length === 0) return { due: 0, rows: [] };
          const rows = await tx.subscription.updateManyAndReturn({
            where: { id: { in: due.map((d) => d.id) }, status: 'ACTIVE', expiresAt: { lte: at } },
            data: { status: 'EXPIRED' },
            select: { subscriberId: true, creatorId: true },
          });
          if (rows.length > 0) {
            await announceEntitlementChange(
              tx,
              'subscription_expired',
              rows.map((r) => ({ kind: 'subscription' as const, subscriberId: r.subscriberId, creatorId: r.creatorId })),
              at,
            );
          }
          return { due: due.length, rows };
        });
        expired += flipped.rows.length;
        if (flipped.due > 0) batches += 1;
        if (flipped.due < batchSize || signal.aborted) break;
      }
      return { expired, batches };
    },
  };
}
