import { expect } from 'chai';
import { Redis } from 'ioredis';
import { randomInt } from 'node:crypto';
import { testRedisPrefix, testRedisUrl, TEST_PUBLISH_SECRET } from '../../../test/support/env.ts';
import { TestClient } from '../support/client.ts';
import { Fixtures } from '../support/fixtures.ts';
import { startServer, type ServerProcess } from '../support/server-process.ts';
import { mintSessionToken } from '../support/tokens.ts';

const likeData = (postId: string, likesCount = 1) => ({ postId, userId: 'someone', likesCount });

function publishOverHttp(server: ServerProcess, body: unknown, secret: string | null = TEST_PUBLISH_SECRET) {
  return fetch(`${server.httpUrl}/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(secret === null ? {} : { authorization: `Bearer ${secret}` }) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

describe('RealtimeServer › delivery', () => {
  let fixtures: Fixtures;
  let redis: Redis;
  const redisChannel = (channel: string) => `${testRedisPrefix('ws:')}${channel}`;

  before(async () => {
    fixtures = new Fixtures();
    redis = new Redis(testRedisUrl());
  });
  after(async () => {
    redis?.disconnect();
    await fixtures?.close();
  });

  describe('through Redis', () => {
    let server: ServerProcess;
    let client: TestClient;
    let userId: string;
    let postId: string;

    before(async () => {
      server = await startServer();
      const user = await fixtures.user();
      userId = user.id;
      postId = (await fixtures.post((await fixtures.creator()).id)).id;
      client = await TestClient.connect(server.url, { token: await mintSessionToken(userId) });
      await client.mustSubscribe(`post_${postId}`);
    });
    after(async () => {
      client?.close();
      await server?.stop();
    });

    it('delivers an event published by another Redis client, filling id and ts', async () => {
      await redis.publish(redisChannel(`post_${postId}`), JSON.stringify({ type: 'post_liked', data: likeData(postId, 7) }));
      const push = await client.next((f) => f.type === 'post_liked');
      expect(push).to.deep.include({ channel: `post_${postId}`, data: likeData(postId, 7) });
      expect(push.id).to.be.a('string').and.not.empty;
      expect(push.ts).to.be.a('number');
    });

    it('keeps the id and ts a publisher chose', async () => {
      await redis.publish(redisChannel(`post_${postId}`), JSON.stringify({ type: 'post_unliked', data: likeData(postId, 0), id: 'evt-42', ts: 1234 }));
      expect(await client.next((f) => f.type === 'post_unliked')).to.include({ id: 'evt-42', ts: 1234 });
    });

    it('drops malformed payloads and keeps delivering', async () => {
      const channel = redisChannel(`post_${postId}`);
      await redis.publish(channel, 'not json');
      await redis.publish(channel, JSON.stringify({ type: 'no_such_event', data: {} }));
      await redis.publish(channel, JSON.stringify({ type: 'post_liked', data: { postId } })); // likesCount missing
      await redis.publish(channel, JSON.stringify({ type: 'comment_deleted', data: { commentId: 'c1', postId, commentsCount: 3 } }));
      await client.next((f) => f.type === 'comment_deleted');
      expect(client.frames.filter((f) => (f.type as string) === 'no_such_event')).to.be.empty;
      expect(client.frames.filter((f) => f.type === 'post_liked' && (f.data as { likesCount?: number }).likesCount === undefined)).to.be.empty;
      expect(server.log()).to.include('dropped malformed event');
    });

    it('subscribes in Redis only to channels its clients hold', async () => {
      const other = (await fixtures.post((await fixtures.creator()).id)).id;
      const pattern = `${testRedisPrefix('ws:')}post_*`;
      const held = async () => (await redis.pubsub('CHANNELS', pattern)) as string[];
      expect(await held()).to.include(redisChannel(`post_${postId}`)).and.not.include(redisChannel(`post_${other}`));
      const second = await TestClient.connect(server.url, { token: await mintSessionToken(userId) });
      await second.mustSubscribe(`post_${other}`);
      expect(await held()).to.include(redisChannel(`post_${other}`));
      await second.request({ type: 'unsubscribe', channel: `post_${other}` });
      // The server sends UNSUBSCRIBE to Redis after its reply: poll until Redis shows it.
      await waitUntil(async () => !(await held()).includes(redisChannel(`post_${other}`)));
      second.close();
    });

    it('matches channel names exactly: a post_N subscriber never receives post_N2', async () => {
      const creator = await fixtures.creator();
      const base = String(randomInt(1_000_000, 9_000_000));
      await fixtures.prisma.post.create({ data: { id: base, authorId: creator.id, title: 't', content: 'c' } });
      await fixtures.prisma.post.create({ data: { id: `${base}2`, authorId: creator.id, title: 't', content: 'c' } });
      const watcher = await TestClient.connect(server.url, { token: await mintSessionToken(userId) });
      await watcher.mustSubscribe(`post_${base}`);
      const longer = await TestClient.connect(server.url, { token: await mintSessionToken(userId) });
      await longer.mustSubscribe(`post_${base}2`);
      // Redis delivers one publisher's messages in order, so the second event arriving proves
      // the first was already routed.
      await redis.publish(redisChannel(`post_${base}2`), JSON.stringify({ type: 'post_liked', data: likeData(`${base}2`) }));
      await redis.publish(redisChannel(`post_${base}`), JSON.stringify({ type: 'post_liked', data: likeData(base) }));
      await watcher.next((f) => f.type === 'post_liked');
      await longer.next((f) => f.type === 'post_liked');
      expect(watcher.pushes().map((f) => f.channel)).to.deep.equal([`post_${base}`]);
      expect(longer.pushes().map((f) => f.channel)).to.deep.equal([`post_${base}2`]);
      watcher.close();
      longer.close();
    });

    it('stops delivering after unsubscribe', async () => {
      const post2 = (await fixtures.post((await fixtures.creator()).id)).id;
      const c = await TestClient.connect(server.url, { token: await mintSessionToken(userId) });
      await c.mustSubscribe(`post_${post2}`);
      await c.mustSubscribe(`feed_${userId}`);
      await c.request({ type: 'unsubscribe', channel: `post_${post2}` });
      await redis.publish(redisChannel(`post_${post2}`), JSON.stringify({ type: 'post_liked', data: likeData(post2) }));
      await redis.publish(redisChannel(`feed_${userId}`), JSON.stringify({ type: 'feed_update', data: { reason: 'post_deleted', postId: post2 } }));
      await c.next((f) => f.type === 'feed_update');
      expect(c.pushes(`post_${post2}`)).to.be.empty;
      c.close();
    });

    it('pushes unread notifications (only unread, newest first) on subscribe to one’s own channel', async () => {
      const owner = await fixtures.user();
      const older = await fixtures.notification(owner.id, { title: 'older' });
      await fixtures.notification(owner.id, { title: 'read one', isRead: true });
      const newer = await fixtures.notification(owner.id, { title: 'newer' });
      const c = await TestClient.connect(server.url, { token: await mintSessionToken(owner.id) });
      await c.mustSubscribe(`notifications_${owner.id}`);
      const push = await c.next((f) => f.type === 'unread_notifications');
      const data = push.data as { count: number; notifications: Array<{ id: string; isRead: boolean; title: string }> };
      expect(push.channel).to.equal(`notifications_${owner.id}`);
      expect(data.count).to.equal(2);
      expect(data.notifications.map((n) => n.id)).to.deep.equal([newer.id, older.id]);
      expect(data.notifications.every((n) => n.isRead === false)).to.equal(true);
      // The reply precedes the snapshot.
      const types = c.frames.map((f) => f.type);
      expect(types.indexOf('subscribed')).to.be.lessThan(types.indexOf('unread_notifications'));
      c.close();
    });

    it('delivers a notification event in the documented shape', async () => {
      const owner = await fixtures.user();
      const c = await TestClient.connect(server.url, { token: await mintSessionToken(owner.id) });
      await c.mustSubscribe(`notifications_${owner.id}`);
      const notification = { id: 'n1', type: 'LIKE', title: 'Liked', message: 'Bob liked your post', isRead: false, createdAt: new Date().toISOString() };
      await redis.publish(redisChannel(`notifications_${owner.id}`), JSON.stringify({ type: 'notification', data: { notification } }));
      expect((await c.next((f) => f.type === 'notification')).data).to.deep.equal({ notification });
      c.close();
    });
  });

  describe('POST /publish', () => {
    let server: ServerProcess;
    let client: TestClient;
    let postId: string;

    before(async () => {
      server = await startServer();
      postId = (await fixtures.post((await fixtures.creator()).id)).id;
      client = await TestClient.connect(server.url, { token: await mintSessionToken((await fixtures.user()).id) });
      await client.mustSubscribe(`post_${postId}`);
    });
    after(async () => {
      client?.close();
      await server?.stop();
    });

    it('answers 202 with the event id and delivers it', async () => {
      const response = await publishOverHttp(server, { channel: `post_${postId}`, type: 'post_liked', data: likeData(postId, 3) });
      expect(response.status).to.equal(202);
      const { id } = (await response.json()) as { id: string };
      const push = await client.next((f) => f.type === 'post_liked' && f.id === id);
      expect(push.data).to.deep.equal(likeData(postId, 3));
    });

    it('publishes one event to several channels in one request, with one id', async () => {
      const user = await fixtures.user();
      const other = await fixtures.user();
      const mine = await TestClient.connect(server.url, { token: await mintSessionToken(user.id) });
      const theirs = await TestClient.connect(server.url, { token: await mintSessionToken(other.id) });
      await mine.mustSubscribe(`feed_${user.id}`);
      await theirs.mustSubscribe(`feed_${other.id}`);
      const data = { reason: 'post_deleted', postId: 'p9' };
      const response = await publishOverHttp(server, { channels: [`feed_${user.id}`, `feed_${other.id}`], type: 'feed_update', data });
      expect(response.status).to.equal(202);
      const { id, channels } = (await response.json()) as { id: string; channels: number };
      expect(channels).to.equal(2);
      expect((await mine.next((f) => f.type === 'feed_update')).id).to.equal(id);
      expect((await theirs.next((f) => f.type === 'feed_update')).id).to.equal(id);
      mine.close();
      theirs.close();
    });

    it('answers 401 without the secret, and with a wrong one', async () => {
      const body = { channel: `post_${postId}`, type: 'post_liked', data: likeData(postId) };
      expect((await publishOverHttp(server, body, null)).status).to.equal(401);
      expect((await publishOverHttp(server, body, 'wrong')).status).to.equal(401);
    });

    for (const [what, body] of [
      ['a body that is not JSON', '{oops'],
      ['a missing channel', { type: 'post_liked', data: {} }],
      ['an invalid channel', { channel: 'nope', type: 'post_liked', data: {} }],
      ['both channel and channels', { channel: 'post_1', channels: ['post_2'], type: 'post_unliked', data: { postId: '1', userId: 'u', likesCount: 0 } }],
      ['an empty channels list', { channels: [], type: 'post_unliked', data: { postId: '1', userId: 'u', likesCount: 0 } }],
      ['one invalid name among channels', { channels: ['post_1', 'nope'], type: 'post_unliked', data: { postId: '1', userId: 'u', likesCount: 0 } }],
      ['an unknown event type', { channel: 'post_1', type: 'explode', data: {} }],
      ['data of the wrong shape', { channel: 'post_1', type: 'post_liked', data: { postId: 1 } }],
      ['data that is not an object', { channel: 'post_1', type: 'post_liked', data: 'x' }],
    ] as const) {
      it(`answers 400 to ${what}`, async () => {
        const response = await publishOverHttp(server, body);
        expect(response.status).to.equal(400);
        expect(((await response.json()) as { message: string }).message).to.be.a('string').and.not.empty;
      });
    }

    it('answers 413 to a body above 64 KiB', async () => {
      const response = await publishOverHttp(server, { channel: 'post_1', type: 'post_liked', data: { pad: 'x'.repeat(70_000) } });
      expect(response.status).to.equal(413);
    });

    it('answers 404 to other routes', async () => {
      expect((await fetch(`${server.httpUrl}/nope`)).status).to.equal(404);
    });
  });

  describe('with the in-memory broker (no REDIS_URL)', () => {
    let server: ServerProcess;

    before(async () => {
      server = await startServer({ broker: 'memory' });
    });
    after(() => server?.stop());

    it('delivers POST /publish events to local subscribers and reports redis as not configured', async () => {
      const user = await fixtures.user();
      const client = await TestClient.connect(server.url, { token: await mintSessionToken(user.id) });
      await client.mustSubscribe(`feed_${user.id}`);
      const response = await publishOverHttp(server, { channel: `feed_${user.id}`, type: 'feed_update', data: { reason: 'post_deleted', postId: 'p1' } });
      expect(response.status).to.equal(202);
      expect((await client.next((f) => f.type === 'feed_update')).data).to.deep.equal({ reason: 'post_deleted', postId: 'p1' });
      const health = (await (await fetch(`${server.httpUrl}/health`)).json()) as Record<string, unknown>;
      expect(health).to.include({ redis: 'not_configured', status: 'ok' });
      client?.close();
    });
  });

  describe('two server instances on one Redis', () => {
    let first: ServerProcess;
    let second: ServerProcess;

    before(async () => {
      [first, second] = await Promise.all([startServer(), startServer()]);
    });
    after(() => Promise.all([first?.stop(), second?.stop()]));

    it('each delivers to its own clients, whichever node the event was published on', async () => {
      const postId = (await fixtures.post((await fixtures.creator()).id)).id;
      const token = await mintSessionToken((await fixtures.user()).id);
      const onFirst = await TestClient.connect(first.url, { token });
      const onSecond = await TestClient.connect(second.url, { token });
      await onFirst.mustSubscribe(`post_${postId}`);
      await onSecond.mustSubscribe(`post_${postId}`);

      await redis.publish(redisChannel(`post_${postId}`), JSON.stringify({ type: 'post_liked', data: likeData(postId, 1), id: 'via-redis' }));
      await Promise.all([onFirst.next((f) => f.id === 'via-redis'), onSecond.next((f) => f.id === 'via-redis')]);

      const response = await publishOverHttp(first, { channel: `post_${postId}`, type: 'post_liked', data: likeData(postId, 2), id: 'via-http' });
      expect(response.status).to.equal(202);
      await Promise.all([onFirst.next((f) => f.id === 'via-http'), onSecond.next((f) => f.id === 'via-http')]);

      expect(onFirst.pushes().filter((f) => f.type === 'post_liked')).to.have.length(2);
      expect(onSecond.pushes().filter((f) => f.type === 'post_liked')).to.have.length(2);
      onFirst.close();
      onSecond.close();
    });
  });
});

async function waitUntil(condition: () => Promise<boolean>, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
