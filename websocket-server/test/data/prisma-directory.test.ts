/**
 * The two reads every connect makes (the session check and the unread-notifications snapshot)
 * are hand-written SQL (data/prisma-directory.ts): they must answer exactly what the Prisma
 * queries they replaced answered, on real PostgreSQL, whatever the process's time zone.
 */
import { expect } from 'chai';
import { PrismaDirectory } from '../../src/data/prisma-directory.ts';
import { toNotificationPayload } from '../../src/protocol/index.ts';
import { testDatabaseUrl } from '../../../test/support/env.ts';
import { Fixtures } from '../support/fixtures.ts';

describe('data/PrismaDirectory (SQL of the connect path)', () => {
  let fixtures: Fixtures;
  let directory: PrismaDirectory;
  const tz = process.env.TZ;
  // Assigning undefined to process.env stores the string "undefined" (an invalid zone that every
  // later test and child process would inherit): an unset TZ is restored by deleting it.
  const restoreTz = () => {
    if (tz === undefined) delete process.env.TZ;
    else process.env.TZ = tz;
  };

  before(() => {
    fixtures = new Fixtures();
    directory = new PrismaDirectory(testDatabaseUrl(), { poolMax: 2, connectTimeoutMs: 5_000, statementTimeoutMs: 5_000 });
  });
  after(async () => {
    restoreTz();
    await directory.close();
    await fixtures.close();
  });

  it('sessionState: unknown user, live session, a signed-out sid, and the sign-out-everywhere cutoff', async () => {
    expect(await directory.sessionState('no-such-user', 'sid-1')).to.deep.equal({ exists: false, sessionsValidAfter: null, sessionRevoked: false, isCreator: false });
    const user = await fixtures.user();
    expect(await directory.sessionState(user.id, 'sid-1')).to.deep.equal({ exists: true, sessionsValidAfter: null, sessionRevoked: false, isCreator: false });
    expect(await directory.sessionState(user.id, undefined)).to.deep.equal({ exists: true, sessionsValidAfter: null, sessionRevoked: false, isCreator: false });
    await fixtures.prisma.revokedSession.create({ data: { sessionId: `sid-${user.id}`, userId: user.id, expiresAt: new Date(Date.now() + 3_600_000) } });
    expect((await directory.sessionState(user.id, `sid-${user.id}`)).sessionRevoked).to.equal(true);
    expect((await directory.sessionState(user.id, 'sid-other')).sessionRevoked).to.equal(false);
    // The creator flag comes with the session (presence tracks creators' sockets only).
    const creator = await fixtures.creator('session-creator');
    expect((await directory.sessionState(creator.id, undefined)).isCreator).to.equal(true);
    // Another user's revoked sid is not this user's.
    const other = await fixtures.user();
    expect((await directory.sessionState(other.id, `sid-${user.id}`)).sessionRevoked).to.equal(false);
    const cutoff = new Date('2026-06-01T12:34:56.789Z');
    await fixtures.prisma.user.update({ where: { id: user.id }, data: { sessionsValidAfter: cutoff } });
    for (const zone of ['UTC', 'America/New_York', 'Asia/Kolkata']) {
      process.env.TZ = zone;
      expect((await directory.sessionState(user.id, 'sid-1')).sessionsValidAfter?.toISOString()).to.equal(cutoff.toISOString());
    }
    restoreTz();
  });

  it('unreadNotifications: the newest unread ones, newest first, capped, with the full unread count and data', async () => {
    const user = await fixtures.user();
    expect(await directory.unreadNotifications(user.id, 5)).to.deep.equal({ notifications: [], count: 0 });
    for (let i = 0; i < 7; i++) {
      await fixtures.prisma.notification.create({
        data: { userId: user.id, type: 'LIKE', title: `n${i}`, message: 'm', createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)), ...(i === 6 ? { data: { postId: 'p1', n: 6 } } : {}) },
      });
    }
    await fixtures.notification(user.id, { isRead: true, title: 'read' });
    // Two rows at one instant: the id breaks the tie, as Prisma's orderBy did.
    const same = new Date(Date.UTC(2026, 0, 1, 0, 0, 3));
    await fixtures.prisma.notification.create({ data: { userId: user.id, type: 'LIKE', title: 'tie', message: 'm', createdAt: same } });
    const expected = (
      await fixtures.prisma.notification.findMany({ where: { userId: user.id, isRead: false }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }], take: 5 })
    ).map(toNotificationPayload);
    for (const zone of ['UTC', 'America/New_York']) {
      process.env.TZ = zone;
      const got = await directory.unreadNotifications(user.id, 5);
      expect(got.count).to.equal(8);
      expect(got.notifications).to.deep.equal(expected);
    }
    restoreTz();
    expect(expected[0]).to.deep.include({ title: 'n6', data: { postId: 'p1', n: 6 } });
    expect((await directory.unreadNotifications(user.id, 0)).notifications).to.deep.equal([]);
  });
});
