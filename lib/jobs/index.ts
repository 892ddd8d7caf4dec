/**
 * The scheduled jobs of the platform, as the outbox relay process runs them
 * (scripts/outbox-relay.ts): one Scheduler, its own small Prisma client for the jobs' work.
 * Every relay runs them; the advisory lock in the scheduler lets one run of each job happen at
 * a time across all relays.
 */
import { createPrismaClient } from '../db/prisma-client.ts';
import { notificationRetentionJob } from './notification-retention.ts';
import { Scheduler, type JobLog } from './scheduler.ts';
import { subscriptionExpiryJob } from './subscription-expiry.ts';

export interface ScheduledJobsConfig {
  databaseUrl: string;
  /** SUBSCRIPTION_EXPIRY_INTERVAL_MS (60 000). */
  subscriptionExpiryIntervalMs: number;
  /** NOTIFICATION_RETENTION_INTERVAL_MS (3 600 000). */
  notificationRetentionIntervalMs: number;
  /** NOTIFICATION_RETENTION_DAYS (30). */
  notificationRetentionDays: number;
  name: string;
  log: JobLog;
}

export function startScheduledJobs(config: ScheduledJobsConfig): { scheduler: Scheduler; stop(): Promise<void> } {
  // One connection: the jobs run one statement or one transaction at a time (and the embedded
  // PGlite of `npm start` accepts 20 connections in all: app 5, server 5, relay 3, jobs 1 + 1).
  const prisma = createPrismaClient(config.databaseUrl, { poolMax: 1 });
  const scheduler = new Scheduler({
    databaseUrl: config.databaseUrl,
    log: config.log,
    name: config.name,
    jobs: [
      subscriptionExpiryJob({ prisma, intervalMs: config.subscriptionExpiryIntervalMs }),
      notificationRetentionJob({ prisma, intervalMs: config.notificationRetentionIntervalMs, retentionDays: config.notificationRetentionDays }),
    ],
  });
  scheduler.start();
  return {
    scheduler,
    async stop() {
      await scheduler.stop();
      await prisma.$disconnect().catch(() => {});
    },
  };
}
