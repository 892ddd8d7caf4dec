/**
 * The API routes over HTTP against the real app (`next start` of the e2e build), whose outbox
 * rows an outbox relay publishes through the WebSocket server's POST /publish (no REDIS_URL: the
 * single-machine default), with protocol-level clients on the server to see exactly what each
 * route publishes where.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { createPrismaClient, type PrismaClient } from '../../lib/db/prisma-client.ts';
import { seedDemoData } from '../../scripts/db/seed.ts';
import { TestClient } from '../../websocket-server/test/support/client.ts';
import { startServer, type ServerProcess } from '../../websocket-server/test/support/server-process.ts';
import { mintSessionToken } from '../../websocket-server/test/support/tokens.ts';
import { channelName } from '../../websocket-server/src/protocol/index.ts';
import { testDatabaseUrl, TEST_NEXTAUTH_SECRET, TEST_PUBLISH_SECRET } from '../support/env.ts';
import { ensureAppBuilt, startApp, type AppProcess } from '../e2e/support/next-app.ts';
import { startRelay, type RelayProcess } from './support/outbox-relay.ts';

type Json = Record<string, unknown>;

describe('API routes (HTTP against the running app)', function () {
  this.timeout(30_000);

  let prisma: PrismaClient;
  let ws: ServerProcess;
  let app: AppProcess;
  let relay: RelayProcess;
  const clients: TestClient[] = [];
  const ids = { alice: '', bob: '', carol: '', dave: '' };
  const cookies = { alice: '', bob: '', carol: '', dave: '' };
  let postId: string;

  /** fetch against the app as `who` (a session cookie minted like next-auth's), or anonymous. */
  async function call(method: string, path: string, who?: keyof typeof cookies, body?: unknown): Promise<{ status: number; json: Json }> {
    const headers: Record<string, string> = {};
    if (who) headers.cookie = `next-auth.session-token=${cookies[who]}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(`${app.url}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: response.status, json: (await response.json().catch(() => ({}))) as Json };
  }

  async function socketAs(who: keyof typeof ids, ...channels: string[]): Promise<TestClient> {
    const client = await TestClient.connect(ws.url, { token: await mintSessionToken(ids[who]) });
    clients.push(client);
    for (const channel of channels) await client.mustSubscribe(channel);
    return client;
  }

  /** Nothing of `type` arrived on `channel` (after the other, awaited, frames of the request). */
  const noPush = (client: TestClient, channel: string, type?: string) =>
    expect(client.pushes(channel).filter((f) => type === undefined || f.type === type)).to.deep.equal([]);

  before(async function () {
    this.timeout(240_000);
    await ensureAppBuilt();
    await seedDemoData(testDatabaseUrl());
    prisma = createPrismaClient(testDatabaseUrl(), { poolMax: 2 });
    for (const name of Object.keys(ids) as (keyof typeof ids)[]) {
      const user = await prisma.user.findUniqueOrThrow({ where: { email: `${name}@example.com` } });
      ids[name] = user.id;
      // What next-auth writes at sign-in: the user's id in `sub`, and their name.
      cookies[name] = await mintSessionToken(user.id, { claims: { name: user.name, email: user.email } });
    }
    postId = `api-${randomBytes(6).toString('hex')}`;
    await prisma.post.create({ data: { id: postId, authorId: ids.alice, title: 'API test post', content: 'Public.' } });
    ws = await startServer({ broker: 'memory' });
    app = await startApp({
      DATABASE_URL: testDatabaseUrl(),
      DATABASE_POOL_MAX: '3',
      NEXTAUTH_SECRET: TEST_NEXTAUTH_SECRET,
      REDIS_URL: '',
      WS_PUBLISH_URL: ws.httpUrl,
      WS_PUBLISH_SECRET: TEST_PUBLISH_SECRET,
    });
    relay = await startRelay({ WS_PUBLISH_URL: ws.httpUrl, WS_PUBLISH_SECRET: TEST_PUBLISH_SECRET });
  });

  after(async function () {
    this.timeout(20_000);
    for (const client of clients) client.close();
    await app?.stop();
    await relay?.stop();
    await ws?.stop();
    await prisma?.$disconnect();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(`      app log (tail):\n${app?.log().slice(-3000)}`);
  });

  describe('authentication', () => {
    it('signs in through the credentials provider and puts the user id in the session', async () => {
      const jar = new Map<string, string>();
      const cookieHeader = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
      const remember = (response: Response) => {
        for (const line of response.headers.getSetCookie()) {
          const [pair = ''] = line.split(';');
          const eq = pair.indexOf('=');
          jar.set(pair.slice(0, eq), pair.slice(eq + 1));
        }
      };
      const csrfResponse = await fetch(`${app.url}/api/auth/csrf`);
      remember(csrfResponse);
      const { csrfToken } = (await csrfResponse.json()) as { csrfToken: string };
      const signIn = await fetch(`${app.url}/api/auth/callback/credentials`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: cookieHeader() },
        body: new URLSearchParams({ csrfToken, email: 'Bob@Example.com', password: 'password', json: 'true' }),
      });
      remember(signIn);
      expect(jar.has('next-auth.session-token')).to.equal(true);
      const session = (await (await fetch(`${app.url}/api/auth/session`, { headers: { cookie: cookieHeader() } })).json()) as Json;
      expect(session.user).to.include({ id: ids.bob, name: 'Bob', isCreator: false });
    });

    it('refuses a wrong password', async () => {
      const csrfResponse = await fetch(`${app.url}/api/auth/csrf`);
      const { csrfToken } = (await csrfResponse.json()) as { csrfToken: string };
      const signIn = await fetch(`${app.url}/api/auth/callback/credentials`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: csrfResponse.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ') },
        body: new URLSearchParams({ csrfToken, email: 'bob@example.com', password: 'wrong', json: 'true' }),
      });
      // next-auth 4.24 answers a credentials callback whose authorize() returned null with 401 and
      // (json=true, App Router handler) the error page's URL as JSON, instead of a redirect.
      expect(signIn.status).to.equal(401);
      expect(signIn.headers.get('location')).to.equal(null);
      const { url } = (await signIn.json()) as { url: string };
      const errorUrl = new URL(url);
      expect(errorUrl.pathname).to.equal('/api/auth/error');
      expect(Object.fromEntries(errorUrl.searchParams)).to.deep.equal({ error: 'CredentialsSignin', provider: 'credentials' });
      const setCookies = signIn.headers.getSetCookie();
      expect(setCookies.filter((c) => /^(__Secure-)?next-auth\.session-token/.test(c)), 'session cookies set').to.deep.equal([]);
      // And the same request with the right password is what does sign in (the form is right).
      const rightPassword = await fetch(`${app.url}/api/auth/callback/credentials`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: csrfResponse.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ') },
        body: new URLSearchParams({ csrfToken, email: 'bob@example.com', password: 'password', json: 'true' }),
      });
      expect(rightPassword.status).to.equal(200);
      expect(rightPassword.headers.getSetCookie().some((c) => c.startsWith('next-auth.session-token='))).to.equal(true);
    });

    it('answers 401 to every route without a session', async () => {
      const routes: Array<[string, string]> = [
        ['POST', '/api/posts'],
        ['GET', `/api/posts/${postId}`],
        ['DELETE', `/api/posts/${postId}`],
        ['POST', `/api/posts/${postId}/like`],
        ['DELETE', `/api/posts/${postId}/like`],
        ['POST', `/api/posts/${postId}/comments`],
        ['DELETE', '/api/comments/x'],
        ['POST', `/api/creators/${ids.alice}/subscription`],
        ['GET', '/api/notifications'],
        ['DELETE', '/api/notifications'],
        ['POST', '/api/notifications/x/read'],
        ['POST', '/api/notifications/read-all'],
        ['GET', '/api/realtime/token'],
        ['PATCH', `/api/posts/${postId}`],
        ['POST', '/api/account/sign-out-everywhere'],
        ['DELETE', '/api/account'],
      ];
      for (const [method, path] of routes) {
        const { status, json } = await call(method, path, undefined, method === 'POST' ? {} : undefined);
        expect(status, `${method} ${path}`).to.equal(401);
        expect(json.error).to.equal('unauthorized');
      }
    });
  });

  describe('validation and access', () => {
    it('answers 422 for bad bodies, queries and ids', async () => {
      expect((await call('POST', `/api/posts/${postId}/comments`, 'bob', { content: '' })).status).to.equal(422);
      expect((await call('POST', `/api/posts/${postId}/comments`, 'bob', { content: 'x', extra: 1 })).status).to.equal(422);
      expect((await call('POST', `/api/posts/${postId}/comments`, 'bob', 'not json')).status).to.equal(422);
      expect((await call('POST', '/api/posts/bad%20id/like', 'bob')).status).to.equal(422);
      expect((await call('POST', '/api/posts', 'alice', { title: '', content: 'x' })).status).to.equal(422);
      expect((await call('GET', '/api/notifications?limit=0', 'alice')).status).to.equal(422);
      const { json } = await call('POST', `/api/creators/${ids.alice}/subscription`, 'bob', { tier: 'GOLD' });
      expect(json).to.include({ error: 'unprocessable' });
      expect(json.issues).to.be.an('array').that.is.not.empty;
    });

    it('answers 404 for posts, comments, creators and notifications that do not exist', async () => {
      expect((await call('POST', '/api/posts/no-such-post/like', 'bob')).status).to.equal(404);
      expect((await call('GET', '/api/posts/no-such-post', 'bob')).status).to.equal(404);
      expect((await call('DELETE', '/api/comments/no-such-comment', 'bob')).status).to.equal(404);
      expect((await call('POST', `/api/creators/${ids.bob}/subscription`, 'carol', {})).status).to.equal(404);
      expect((await call('POST', '/api/notifications/no-such-notification/read', 'bob')).status).to.equal(404);
    });

    it('answers 403 where the user may not act', async () => {
      expect((await call('POST', '/api/posts/demo-post-alice-basic/like', 'carol')).status).to.equal(403);
      expect((await call('POST', '/api/posts/demo-post-alice-basic/comments', 'carol', { content: 'let me in' })).status).to.equal(403);
      expect((await call('DELETE', `/api/posts/${postId}`, 'bob')).status).to.equal(403);
      expect((await call('POST', '/api/posts', 'bob', { title: 'Not a creator', content: 'x' })).status).to.equal(403);
      // Someone else's notification is as good as missing.
      const own = await prisma.notification.findFirstOrThrow({ where: { userId: ids.alice } });
      expect((await call('POST', `/api/notifications/${own.id}/read`, 'bob')).status).to.equal(404);
    });

    it('shows a locked post without its content to a viewer without access', async () => {
      const { status, json } = await call('GET', '/api/posts/demo-post-alice-basic', 'carol');
      expect(status).to.equal(200);
      expect(json).to.include({ locked: true, content: null });
      expect(json.comments).to.deep.equal([]);
      const bob = await call('GET', '/api/posts/demo-post-alice-basic', 'bob');
      expect(bob.json).to.include({ locked: false, access: 'subscriber' });
    });
  });

  describe('publishing (through POST /publish)', () => {
    it('a like: post_liked on the post channel and a notification to the author; none for a self-like', async () => {
      const watcher = await socketAs('carol', channelName.post(postId));
      const author = await socketAs('alice', channelName.notifications(ids.alice));
      const { status, json } = await call('POST', `/api/posts/${postId}/like`, 'bob');
      expect(status).to.equal(200);
      // `version`: the post's statsVersion, bumped by every change of its counters.
      expect(json).to.deep.equal({ liked: true, likesCount: 1, version: 1 });
      const liked = await watcher.next((f) => f.type === 'post_liked');
      expect(liked.data).to.deep.equal({ postId, userId: ids.bob, likesCount: 1, version: 1 });
      const notification = await author.next((f) => f.type === 'notification');
      expect((notification.data as { notification: Json }).notification).to.include({ type: 'LIKE', isRead: false, message: 'Bob liked "API test post"' });

      // Liking again changes nothing and publishes nothing.
      expect((await call('POST', `/api/posts/${postId}/like`, 'bob')).json).to.deep.equal({ liked: true, likesCount: 1, version: 1 });
      const before = await prisma.notification.count({ where: { userId: ids.alice } });
      await call('POST', `/api/posts/${postId}/like`, 'alice');
      await watcher.next((f) => f.type === 'post_liked' && (f.data as Json).userId === ids.alice);
      expect(await prisma.notification.count({ where: { userId: ids.alice } })).to.equal(before);
      expect(watcher.pushes(channelName.post(postId)).filter((f) => f.type === 'post_liked')).to.have.length(2);

      const unliked = await call('DELETE', `/api/posts/${postId}/like`, 'bob');
      expect(unliked.json).to.deep.equal({ liked: false, likesCount: 1, version: 3 });
      expect((await watcher.next((f) => f.type === 'post_unliked')).data).to.include({ userId: ids.bob, likesCount: 1, version: 3 });
    });

    it('a comment: comment_added on the post channel and a notification; deleting it: comment_deleted', async () => {
      const watcher = await socketAs('carol', channelName.post(postId));
      const author = await socketAs('alice', channelName.notifications(ids.alice));
      const { status, json } = await call('POST', `/api/posts/${postId}/comments`, 'bob', { content: '  Nice one  ' });
      expect(status).to.equal(201);
      const comment = json.comment as Json;
      expect(comment).to.include({ postId, authorId: ids.bob, authorName: 'Bob', content: 'Nice one' });
      const added = await watcher.next((f) => f.type === 'comment_added');
      expect(json.version).to.be.a('number');
      expect(added.data).to.deep.equal({ comment, commentsCount: 1, version: json.version });
      await author.next((f) => f.type === 'notification' && (f.data as { notification: Json }).notification.type === 'COMMENT');

      expect((await call('DELETE', `/api/comments/${String(comment.id)}`, 'carol')).status).to.equal(403);
      const version = Number(json.version) + 1;
      expect((await call('DELETE', `/api/comments/${String(comment.id)}`, 'alice')).json).to.deep.equal({ deleted: true, commentsCount: 0, version });
      const deleted = await watcher.next((f) => f.type === 'comment_deleted');
      expect(deleted.data).to.deep.equal({ commentId: comment.id, postId, commentsCount: 0, version });
    });

    it('a new locked post: its summary (no content) on the creator channel and feed_update on each active subscriber’s feed', async () => {
      const stranger = await socketAs('carol', channelName.creator(ids.alice));
      const subscriber = await socketAs('bob', channelName.feed(ids.bob));
      const { status, json } = await call('POST', '/api/posts', 'alice', {
        title: 'Locked news',
        content: 'THE SECRET CONTENT',
        isLocked: true,
        requiredTier: 'PREMIUM',
      });
      expect(status).to.equal(201);
      const created = await stranger.next((f) => f.type === 'post_created');
      const post = (created.data as { post: Json }).post;
      expect(post).to.include({ id: (json.post as Json).id, authorId: ids.alice, title: 'Locked news', isLocked: true, requiredTier: 'PREMIUM' });
      expect(JSON.stringify(created)).not.to.include('SECRET');
      const update = await subscriber.next((f) => f.type === 'feed_update');
      expect(update.data).to.include({ reason: 'post_created', postId: post.id });
      expect(JSON.stringify(update)).not.to.include('SECRET');

      expect((await call('DELETE', `/api/posts/${String(post.id)}`, 'alice')).json).to.deep.equal({ deleted: true });
      await stranger.next((f) => f.type === 'post_deleted');
      expect((await subscriber.next((f) => f.type === 'feed_update' && (f.data as Json).reason === 'post_deleted')).data).to.include({ postId: post.id });
    });

    it('a subscription: new_subscription and a notification on the creator’s own channel, nothing on the public one', async () => {
      const publicWatcher = await socketAs('bob', channelName.creator(ids.dave));
      const creator = await socketAs('dave', channelName.notifications(ids.dave));
      const { status, json } = await call('POST', `/api/creators/${ids.dave}/subscription`, 'carol', { tier: 'PREMIUM' });
      expect(status).to.equal(201);
      expect(json.created).to.equal(true);
      const event = await creator.next((f) => f.type === 'new_subscription');
      expect(event.data).to.include({ subscriberId: ids.carol, subscriberName: 'Carol', tier: 'PREMIUM' });
      await creator.next((f) => f.type === 'notification' && (f.data as { notification: Json }).notification.type === 'NEW_SUBSCRIBER');
      // The same subscription again is not news.
      expect((await call('POST', `/api/creators/${ids.dave}/subscription`, 'carol', { tier: 'PREMIUM' })).status).to.equal(200);
      // A round trip on the public channel's socket, so anything published there has arrived.
      await publicWatcher.request({ type: 'ping' });
      noPush(publicWatcher, channelName.creator(ids.dave));
      // And the subscription unlocks the post for her.
      expect((await call('GET', '/api/posts/demo-post-dave-premium', 'carol')).json).to.include({ locked: false, access: 'subscriber' });
      expect((await call('POST', `/api/creators/${ids.carol}/subscription`, 'carol', {})).status, 'self-subscription').to.equal(422);
    });

    it('notifications: cursor pages, mark one read, mark all read and clear, each pushed to the user’s channel', async () => {
      const userId = ids.carol;
      await prisma.notification.deleteMany({ where: { userId } });
      for (let i = 0; i < 5; i++) {
        await prisma.notification.create({
          data: { userId, type: 'TEST', title: `n${i}`, message: `m${i}`, createdAt: new Date(Date.now() - (5 - i) * 1000) },
        });
      }
      const tab = await socketAs('carol', channelName.notifications(userId));
      await tab.next((f) => f.type === 'unread_notifications');

      const first = await call('GET', '/api/notifications?limit=2', 'carol');
      expect((first.json.notifications as Json[]).map((n) => n.title)).to.deep.equal(['n4', 'n3']);
      expect(first.json.unreadCount).to.equal(5);
      const second = await call('GET', `/api/notifications?limit=2&cursor=${String(first.json.nextCursor)}`, 'carol');
      expect((second.json.notifications as Json[]).map((n) => n.title)).to.deep.equal(['n2', 'n1']);
      const third = await call('GET', `/api/notifications?limit=2&cursor=${String(second.json.nextCursor)}`, 'carol');
      expect((third.json.notifications as Json[]).map((n) => n.title)).to.deep.equal(['n0']);
      expect(third.json.nextCursor).to.equal(null);
      expect((await call('GET', `/api/notifications?cursor=${String(first.json.nextCursor)}`, 'bob')).status).to.equal(422);

      const target = (first.json.notifications as Json[])[0]!;
      expect((await call('POST', `/api/notifications/${String(target.id)}/read`, 'carol')).json).to.include({ unreadCount: 4 });
      expect((await tab.next((f) => f.type === 'notification_read')).data).to.deep.equal({ notificationId: target.id, unreadCount: 4 });

      expect((await call('POST', '/api/notifications/read-all', 'carol')).json).to.include({ marked: 4, unreadCount: 0 });
      expect((await tab.next((f) => f.type === 'notification_read' && (f.data as Json).notificationId === null)).data).to.deep.equal({ notificationId: null, unreadCount: 0 });

      expect((await call('DELETE', '/api/notifications', 'carol')).json).to.include({ deleted: 5, unreadCount: 0 });
      const cleared = await tab.next((f) => f.type === 'notifications_cleared');
      expect(cleared.data).to.deep.equal({ unreadCount: 0 });
      // The first page carries the channel's position, read before the rows: here, that of the
      // last event the tab received.
      expect((await call('GET', '/api/notifications', 'carol')).json).to.deep.equal({
        notifications: [],
        nextCursor: null,
        unreadCount: 0,
        position: { offset: cleared.offset, epoch: cleared.epoch },
      });
    });
  });

  describe('GET /api/realtime/token', () => {
    it('returns a short-lived token that opens a socket as the user, but is no session for the app', async () => {
      const { status, json } = await call('GET', '/api/realtime/token', 'bob');
      expect(status).to.equal(200);
      // Without WS_PUBLIC_URL: the page's host with the WebSocket server's port.
      expect(json.url).to.equal(`ws://127.0.0.1:${ws.port}`);
      const expiresIn = Number(json.expiresAt) - Date.now();
      expect(expiresIn).to.be.within(4 * 60_000, 5 * 60_000);
      const client = await TestClient.connect(ws.url, { token: String(json.token), via: 'query' });
      clients.push(client);
      expect(client.frames[0]).to.include({ type: 'connected', userId: ids.bob });

      const asSession = await fetch(`${app.url}/api/notifications`, { headers: { cookie: `next-auth.session-token=${String(json.token)}` } });
      expect(asSession.status).to.equal(401);
    });
  });

  describe('when the WebSocket server is down', () => {
    it('still answers the request that committed; its events wait in the outbox, retried', async () => {
      await ws.stop();
      const { status, json } = await call('POST', `/api/posts/${postId}/comments`, 'bob', { content: 'nobody is listening' });
      expect(status).to.equal(201);
      expect(await prisma.comment.count({ where: { id: String((json.comment as Json).id) } })).to.equal(1);
      expect(await prisma.notification.count({ where: { userId: ids.alice, message: { contains: 'nobody is listening' } } })).to.equal(1);
      // comment_added and the author's notification: unsent, the relay failing and retrying.
      const waiting = async () =>
        prisma.outboxEvent.findMany({ where: { sentAt: null, failedAt: null }, orderBy: { id: 'asc' }, select: { type: true, attempts: true, lastError: true } });
      const deadline = Date.now() + 10_000;
      while ((await waiting()).some((row) => row.attempts < 2) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      const rows = await waiting();
      expect(rows.map((row) => row.type)).to.deep.equal(['comment_added', 'notification']);
      expect(rows.every((row) => row.attempts >= 2 && row.lastError !== null), JSON.stringify(rows)).to.equal(true);
      const health = (await call('GET', '/api/health')).json.outbox as Json;
      expect(health).to.include({ pending: 2, failed: 0 });
      expect(health.oldestPendingAt).to.be.a('string');
    });
  });
});
