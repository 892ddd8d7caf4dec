/**
 * The access cache: hits after the first read, and never an answer older than a revocation.
 * The unit part drives CachedDirectory over a scripted inner directory (to hold a read in flight
 * at will); the server part proves the same on the running server, with real PostgreSQL.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { CachedDirectory } from '../../src/data/cached-directory.ts';
import type { Directory, PostAccessFacts, SessionState, SubscriptionFacts } from '../../src/data/directory.ts';
import { CONTROL_CHANNEL, CLOSE_CODES, channelName, type ControlMessage } from '../../src/protocol/index.ts';
import { testRedisPrefix, testRedisUrl } from '../../../test/support/env.ts';
import { TestClient } from '../support/client.ts';
import { Fixtures } from '../support/fixtures.ts';
import { startServer, type ServerProcess } from '../support/server-process.ts';
import { metricValue } from '../support/metrics.ts';
import { mintSessionToken } from '../support/tokens.ts';

/** An inner directory whose answers the test sets, and whose reads it can hold. */
class ScriptedDirectory implements Directory {
  subscription: SubscriptionFacts | null = { status: 'ACTIVE', tier: 'BASIC', expiresAt: null };
  reads = 0;
  hold: Promise<void> | null = null;
  async sessionState(): Promise<SessionState> {
    return { exists: true, sessionsValidAfter: null, sessionRevoked: false, isCreator: false };
  }
  async creatorExists() {
    return true;
  }
  async findPost(postId: string): Promise<PostAccessFacts | null> {
    return { id: postId, authorId: 'a', isLocked: true, requiredTier: 'BASIC' };
  }
  async findSubscription(): Promise<SubscriptionFacts | null> {
    this.reads++;
    const answer = this.subscription;
    await this.hold;
    return answer;
  }
  async hasPurchased() {
    return false;
  }
  async unreadNotifications() {
    return { notifications: [], count: 0 };
  }
  async notificationsAfter() {
    return { notifications: [], unreadCount: 0 };
  }
  async conversationParticipants() {
    return null;
  }
  async ping() {}
  async close() {}
}

const cancelled: ControlMessage = {
  type: 'entitlement_changed',
  cause: 'subscription_cancelled',
  subjects: [{ kind: 'subscription', subscriberId: 'bob', creatorId: 'alice' }],
};

describe('CachedDirectory', () => {
  it('answers from memory after the first read, and from the database after an invalidation', async () => {
    const inner = new ScriptedDirectory();
    const cache = new CachedDirectory(inner, { ttlMs: 60_000 });
    await cache.findSubscription('bob', 'alice');
    await cache.findSubscription('bob', 'alice');
    expect(inner.reads).to.equal(1);
    inner.subscription = { status: 'CANCELLED', tier: 'BASIC', expiresAt: null };
    cache.invalidate(cancelled);
    expect((await cache.findSubscription('bob', 'alice'))?.status).to.equal('CANCELLED');
    expect(inner.reads).to.equal(2);
  });

  it('keeps granting answers only: a refusal is read again, so a new subscription counts at once', async () => {
    const inner = new ScriptedDirectory();
    inner.subscription = null;
    const cache = new CachedDirectory(inner, { ttlMs: 60_000 });
    expect(await cache.findSubscription('bob', 'alice')).to.equal(null);
    // Bob subscribes; the announcement trails the commit, but the next read sees the row.
    inner.subscription = { status: 'ACTIVE', tier: 'BASIC', expiresAt: null };
    expect((await cache.findSubscription('bob', 'alice'))?.status).to.equal('ACTIVE');
    expect(inner.reads).to.equal(2);
    await cache.findSubscription('bob', 'alice');
    expect(inner.reads).to.equal(2);
  });

  it('does not store a read that was in flight when its key was invalidated', async () => {
    const inner = new ScriptedDirectory();
    const cache = new CachedDirectory(inner, { ttlMs: 60_000 });
    let release!: () => void;
    inner.hold = new Promise((resolve) => (release = resolve));
    const stale = cache.findSubscription('bob', 'alice'); // reads ACTIVE, then waits
    inner.subscription = { status: 'CANCELLED', tier: 'BASIC', expiresAt: null };
    cache.invalidate(cancelled);
    release();
    expect((await stale)?.status).to.equal('ACTIVE'); // the caller gets what it read…
    inner.hold = null;
    expect((await cache.findSubscription('bob', 'alice'))?.status).to.equal('CANCELLED'); // …but it was not kept
  });

  it('drops a user’s entries on a session message, everything on clear(), and expires entries after the TTL', async () => {
    const inner = new ScriptedDirectory();
    const cache = new CachedDirectory(inner, { ttlMs: 30 });
    await cache.findSubscription('bob', 'alice');
    cache.invalidate({ type: 'user_sessions_revoked', userId: 'bob', notBefore: Date.now() });
    await cache.findSubscription('bob', 'alice');
    expect(inner.reads).to.equal(2);
    cache.clear();
    await cache.findSubscription('bob', 'alice');
    expect(inner.reads).to.equal(3);
    await new Promise((resolve) => setTimeout(resolve, 40));
    await cache.findSubscription('bob', 'alice');
    expect(inner.reads).to.equal(4);
  });

  it('is bounded: past maxEntries the oldest entries go, and one user’s revocation drops only theirs', async () => {
    const inner = new ScriptedDirectory();
    const cache = new CachedDirectory(inner, { ttlMs: 60_000, maxEntries: 3 });
    for (const user of ['u1', 'u2', 'u3', 'u4', 'u5']) await cache.findSubscription(user, 'alice');
    expect(cache.size).to.equal(3);
    expect(inner.reads).to.equal(5);
    await cache.findSubscription('u5', 'alice'); // newest: kept
    expect(inner.reads).to.equal(5);
    await cache.findSubscription('u1', 'alice'); // oldest: gone, read again (and u3 goes)
    expect(inner.reads).to.equal(6);
    expect(cache.size).to.equal(3);
    cache.invalidate({ type: 'user_deleted', userId: 'u5' });
    expect(cache.size).to.equal(2);
    await cache.findSubscription('u4', 'alice');
    expect(inner.reads).to.equal(6);
    for (let i = 0; i < 1_000; i++) await cache.sessionState(`s${i}`, 'sid');
    expect(cache.size).to.equal(3);
  });
});

describe('CachedDirectory › on the running server', () => {
  let server: ServerProcess;
  let fixtures: Fixtures;
  let redis: Redis;

  before(async () => {
    fixtures = new Fixtures();
    redis = new Redis(testRedisUrl());
    server = await startServer({ env: { ACCESS_CACHE_TTL_MS: '600000' } });
  });
  after(async () => {
    redis?.disconnect();
    await server?.stop();
    await fixtures?.close();
  });

  const announce = (message: ControlMessage) => redis.publish(`${testRedisPrefix('ws:')}${CONTROL_CHANNEL}`, JSON.stringify(message));
  const hits = (kind: string) => metricValue(server.httpUrl, `ws_access_cache_total{kind="${kind}",result="hit"}`);

  it('serves repeated subscribes from the cache, and a cancelled subscription is never served from it', async () => {
    const alice = await fixtures.creator('alice');
    const bob = await fixtures.user({ name: 'bob' });
    const post = await fixtures.post(alice.id, { isLocked: true });
    await fixtures.subscription(bob.id, alice.id);
    const client = await TestClient.connect(server.url, { token: await mintSessionToken(bob.id) });
    const channel = channelName.post(post.id);
    await client.mustSubscribe(channel);
    await client.request({ type: 'unsubscribe', channel });
    const before = await hits('subscription');
    await client.mustSubscribe(channel);
    expect(await hits('subscription')).to.equal(before + 1);

    await fixtures.prisma.subscription.updateMany({ where: { subscriberId: bob.id }, data: { status: 'CANCELLED' } });
    await announce({ type: 'entitlement_changed', cause: 'subscription_cancelled', subjects: [{ kind: 'subscription', subscriberId: bob.id, creatorId: alice.id }] });
    // The live membership is re-checked against the database, not the cached ACTIVE row…
    expect(await client.next((f) => f.type === 'unsubscribed' && f.channel === channel && 'reason' in f)).to.include({ reason: 'forbidden' });
    // …and so is the next subscribe.
    expect(await client.subscribe(channel)).to.include({ type: 'error', code: 'forbidden' });
    client.close();
  });

  it('serves repeated handshakes from the cache, and a signed-out-everywhere token is refused at once', async () => {
    const bob = await fixtures.user({ name: 'bob' });
    const token = await mintSessionToken(bob.id);
    (await TestClient.connect(server.url, { token })).close();
    const before = await hits('session');
    const second = await TestClient.connect(server.url, { token });
    expect(await hits('session')).to.equal(before + 1);

    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const cutoff = Date.now();
    await fixtures.prisma.user.update({ where: { id: bob.id }, data: { sessionsValidAfter: new Date(cutoff) } });
    await announce({ type: 'user_sessions_revoked', userId: bob.id, notBefore: cutoff });
    expect((await second.closed).code).to.equal(CLOSE_CODES.sessionRevoked);
    expect((await TestClient.open(server.url, { token }).closed).code).to.equal(CLOSE_CODES.unauthorized);
  });

  it('a cached session signed out (its sid revoked) is refused at once, and the user’s other session still connects', async () => {
    const bob = await fixtures.user({ name: 'bob' });
    const sid = `sid-${bob.id}`;
    const token = await mintSessionToken(bob.id, { claims: { sid } });
    const other = await mintSessionToken(bob.id, { claims: { sid: `${sid}-2` } });
    (await TestClient.connect(server.url, { token })).close();
    const before = await hits('session');
    const open = await TestClient.connect(server.url, { token });
    expect(await hits('session'), 'the second handshake was answered from the cache').to.equal(before + 1);

    await fixtures.prisma.revokedSession.create({ data: { sessionId: sid, userId: bob.id, expiresAt: new Date(Date.now() + 3_600_000) } });
    await announce({ type: 'session_revoked', userId: bob.id, sessionId: sid });
    expect((await open.closed).code).to.equal(CLOSE_CODES.sessionRevoked);
    expect((await TestClient.open(server.url, { token }).closed).code).to.equal(CLOSE_CODES.unauthorized);
    const still = await TestClient.connect(server.url, { token: other });
    expect((await still.request({ type: 'ping' })).type).to.equal('pong');
    still.close();
  });

  it('a cached session of a deleted account is refused at once', async () => {
    const bob = await fixtures.user({ name: 'bob' });
    const token = await mintSessionToken(bob.id);
    (await TestClient.connect(server.url, { token })).close();
    const before = await hits('session');
    const open = await TestClient.connect(server.url, { token });
    expect(await hits('session'), 'the second handshake was answered from the cache').to.equal(before + 1);

    await fixtures.prisma.user.delete({ where: { id: bob.id } });
    await announce({ type: 'user_deleted', userId: bob.id });
    expect((await open.closed).code).to.equal(CLOSE_CODES.sessionRevoked);
    expect((await TestClient.open(server.url, { token }).closed).code).to.equal(CLOSE_CODES.unauthorized);
  });
});
