/**
 * The notification-retention job (lib/jobs/notification-retention.ts) against the real
 * database: it deletes exactly the READ notifications older than the retention, in batches;
 * unread ones however old, read ones younger than the retention, and every row of every other
 * user that is not read-and-old stay. The retention is configurable (NOTIFICATION_RETENTION_DAYS).
 */
import { expect } from 'chai';
import { createPrismaClient, type PrismaClient } from '../../../lib/db/prisma-client.ts';
import { Scheduler, type JobLog } from '../../../lib/jobs/scheduler.ts';
import { NOTIFICATION_RETENTION_JOB, notificationRetentionJob } from '../../../lib/jobs/notification-retention.ts';
import { testDatabaseUrl } from '../../support/env.ts';
import { createUser } from '../support/auth-flow.ts';

/** The scheduler's lines are not this test's output; errors still show. */
const log: JobLog = { debug() {}, info() {}, warn: (m, f) => console.error(m, f), error: (m, f) => console.error(m, f) };
const DAY = 86_400_000;

describe('notification-retention job', function () {
  this.timeout(20_000);
  let prisma: PrismaClient;
  const schedulers: Scheduler[] = [];

  before(() => {
    prisma = createPrismaClient(testDatabaseUrl(), { poolMax: 2 });
  });
  afterEach(async () => {
    await Promise.all(schedulers.splice(0).map((s) => s.stop()));
  });
  after(async () => {
    await prisma.$disconnect();
  });

  function schedulerWith(options: { retentionDays?: number; batchSize?: number }) {
    const scheduler = new Scheduler({ databaseUrl: testDatabaseUrl(), log, jitter: 0, jobs: [notificationRetentionJob({ prisma, ...options })] });
    schedulers.push(scheduler);
    return scheduler;
  }

  async function notification(userId: string, isRead: boolean, ageDays: number, title: string) {
    return prisma.notification.create({
      data: { userId, type: 'LIKE', title, message: title, isRead, createdAt: new Date(Date.now() - ageDays * DAY) },
    });
  }

  it('deletes exactly the read notifications older than 30 days, in batches; unread old, read recent and the rest stay', async () => {
    const [alice, bob] = [await createUser(prisma), await createUser(prisma)];
    const goes = [
      await notification(alice.id, true, 31, 'alice read 31 d'),
      await notification(alice.id, true, 45, 'alice read 45 d'),
      await notification(alice.id, true, 400, 'alice read 400 d'),
      await notification(bob.id, true, 60, 'bob read 60 d'),
      await notification(bob.id, true, 30.01, 'bob read just past 30 d'),
    ];
    const stays = [
      await notification(alice.id, false, 400, 'alice unread 400 d'),
      await notification(alice.id, false, 31, 'alice unread 31 d'),
      await notification(alice.id, true, 29.9, 'alice read 29.9 d'),
      await notification(alice.id, true, 0, 'alice read today'),
      await notification(bob.id, false, 60, 'bob unread 60 d'),
      await notification(bob.id, true, 10, 'bob read 10 d'),
    ];
    const result = await schedulerWith({ batchSize: 2 }).runNow(NOTIFICATION_RETENTION_JOB);
    expect(result.status).to.equal('ran');
    const outcome = (result as { outcome: Record<string, number> }).outcome;
    // Other suites of a full run may have read old notifications too (none are 30 days old today).
    expect(outcome.deleted).to.be.at.least(goes.length);
    expect(outcome.batches).to.equal(Math.ceil(outcome.deleted! / 2));

    const left = await prisma.notification.findMany({ where: { userId: { in: [alice.id, bob.id] } }, select: { title: true } });
    expect(left.map((n) => n.title).sort()).to.deep.equal(stays.map((n) => n.title).sort());
    expect(await prisma.notification.count({ where: { id: { in: goes.map((n) => n.id) } } })).to.equal(0);
    // And nothing read-and-old is left anywhere.
    expect(await prisma.notification.count({ where: { isRead: true, createdAt: { lt: new Date(Date.now() - 30 * DAY) } } })).to.equal(0);
  });

  it('NOTIFICATION_RETENTION_DAYS: with 7 days a read notification of 10 days goes, one of 5 days and unread ones stay', async () => {
    const user = await createUser(prisma);
    const old = await notification(user.id, true, 10, 'read 10 d');
    const kept = [await notification(user.id, true, 5, 'read 5 d'), await notification(user.id, false, 10, 'unread 10 d')];
    expect((await schedulerWith({ retentionDays: 7 }).runNow(NOTIFICATION_RETENTION_JOB)).status).to.equal('ran');
    const left = await prisma.notification.findMany({ where: { userId: user.id }, select: { id: true } });
    expect(left.map((n) => n.id).sort()).to.deep.equal(kept.map((n) => n.id).sort());
    expect(left.map((n) => n.id)).to.not.include(old.id);
  });
});
