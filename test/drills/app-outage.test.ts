/**
 * Fault drills through the real app (`next start` of the e2e build), the outbox relay
 * (scripts/outbox-relay.ts) and the WebSocket server, all on a Redis and a PostgreSQL of the
 * drill's own (never the shared 6379 / 5432), so both can be stopped:
 *
 * 1. An API write while Redis is down: the request succeeds (the like and its outbox rows commit
 *    in one transaction), and once Redis is back the event reaches the post's subscriber (live,
 *    or through the reload the node asks for, which reads the like), and the author's bell gets
 *    the notification (live, or from the database with `notifications_recovered`).
 * 2. PostgreSQL unreachable: API writes fail clearly (a 5xx JSON answer, quickly), reads too;
 *    a signed-in user is not signed out by it (no 401 from the socket token route, the session
 *    cookie kept); after it returns, everything committed before is there and was published,
 *    and writes work again.
 *
 * Prints the request outcomes, the relay's publish delay after Redis returned and each
 * subscriber's recovery path and latency.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { createPrismaClient, type PrismaClient } from '../../lib/db/prisma-client.ts';
import { applyMigrations } from '../../scripts/db/schema-engine.ts';
import { channelName } from '../../websocket-server/src/protocol/index.ts';
import { startServer, type ServerProcess } from '../../websocket-server/test/support/server-process.ts';
import { mintSessionToken } from '../../websocket-server/test/support/tokens.ts';
import { ensureAppBuilt, startApp, type AppProcess } from '../e2e/support/next-app.ts';
import { startRelay, type RelayProcess } from '../app/support/outbox-relay.ts';
import { TEST_NEXTAUTH_SECRET, TEST_PUBLISH_SECRET } from '../support/env.ts';
import { DrillClient } from './support/drill-client.ts';
import { report } from './support/ledger.ts';
import { OwnPostgres } from './support/own-postgres.ts';
import { OwnRedis } from './support/own-redis.ts';
import { sleep } from './support/publisher.ts';

type Json = Record<string, unknown>;
const PREFIX = 'ws:';

describe('drill: the app while Redis or PostgreSQL is down (outbox)', function () {
  this.timeout(60_000);

  let redis: OwnRedis | undefined;
  let pg: OwnPostgres | undefined;
  let prisma: PrismaClient | undefined;
  let ws: ServerProcess | undefined;
  let app: AppProcess | undefined;
  let relay: RelayProcess | undefined;
  let databaseUrl: string;
  const clients: DrillClient[] = [];
  const users: Record<'alice' | 'bob' | 'carol' | 'dave', { id: string; cookie: string }> = {
    alice: { id: '', cookie: '' },
    bob: { id: '', cookie: '' },
    carol: { id: '', cookie: '' },
    dave: { id: '', cookie: '' },
  };

  before(async function () {
    this.timeout(400_000);
    const built = ensureAppBuilt();
    redis = await OwnRedis.start();
    pg = await OwnPostgres.start();
    databaseUrl = await pg.createDatabase('drill_app');
    await applyMigrations(databaseUrl);
    prisma = createPrismaClient(databaseUrl, { poolMax: 2 });
    for (const name of Object.keys(users) as Array<keyof typeof users>) {
      const user = await prisma.user.create({
        data: { email: `${name}-${randomBytes(4).toString('hex')}@test.invalid`, name, passwordHash: 'x', isCreator: name === 'alice' },
      });
      users[name] = { id: user.id, cookie: await mintSessionToken(user.id, { claims: { name: user.name, email: user.email } }) };
    }
    ws = await startServer({
      env: { DATABASE_URL: databaseUrl, REDIS_URL: redis.url, REDIS_CHANNEL_PREFIX: PREFIX, LOG_LEVEL: 'info', CONNECT_RATE_PER_IP: '1000', CONNECT_BURST_PER_IP: '1000' },
    });
    await built;
    app = await startApp({
      DATABASE_URL: databaseUrl,
      DATABASE_POOL_MAX: '3',
      NEXTAUTH_SECRET: TEST_NEXTAUTH_SECRET,
      REDIS_URL: redis.url,
      REDIS_CHANNEL_PREFIX: PREFIX,
      WS_PUBLISH_URL: ws.httpUrl,
      WS_PUBLISH_SECRET: TEST_PUBLISH_SECRET,
    });
    relay = await startRelay({ DATABASE_URL: databaseUrl, REDIS_URL: redis.url, REDIS_CHANNEL_PREFIX: PREFIX, OUTBOX_MAX_BACKOFF_MS: '1000' });
  });

  afterEach(function () {
    if (this.currentTest?.state !== 'failed') return;
    process.stdout.write(`      relay (exit ${relay?.child.exitCode ?? relay?.child.signalCode ?? 'running'}) log (tail):\n${relay?.log().slice(-2500)}\n`);
    process.stdout.write(`      app log (tail):\n${app?.log().slice(-1500)}\n`);
  });

  after(async function () {
    this.timeout(60_000);
    for (const client of clients) client.stop();
    await relay?.stop();
    await app?.stop();
    await ws?.stop();
    await prisma?.$disconnect();
    await redis?.stop();
    await pg?.destroy();
  });

  async function call(method: string, path: string, who: keyof typeof users): Promise<{ status: number; json: Json; ms: number; contentType: string; setCookie: string }> {
    const started = Date.now();
    const response = await fetch(`${app!.url}${path}`, {
      method,
      headers: { cookie: `next-auth.session-token=${users[who].cookie}` },
      signal: AbortSignal.timeout(20_000),
    });
    const text = await response.text();
    let json: Json = {};
    try {
      json = JSON.parse(text) as Json;
    } catch {
      json = { notJson: text.slice(0, 200) };
    }
    return {
      status: response.status,
      json,
      ms: Date.now() - started,
      contentType: response.headers.get('content-type') ?? '',
      setCookie: response.headers.getSetCookie().join('; '),
    };
  }

  const newPost = async () => prisma!.post.create({ data: { authorId: users.alice.id, title: `Drill ${randomBytes(3).toString('hex')}`, content: 'Public.' } });

  async function subscriber(who: keyof typeof users, channel: string, name: string, lastNotificationId?: string): Promise<DrillClient> {
    const client = new DrillClient({ urls: [ws!.url], token: await mintSessionToken(users[who].id), channels: [channel], name, ...(lastNotificationId ? { lastNotificationId } : {}) });
    clients.push(client);
    await client.start();
    return client;
  }

  /** The outbox rows of a post's like, once the relay marked them sent (or null). */
  async function likeRows(postId: string) {
    return prisma!.outboxEvent.findMany({ where: { type: 'post_liked', channels: { has: channelName.post(postId) } }, orderBy: { id: 'asc' } });
  }

  it('a like while Redis is down: the request succeeds, and after Redis returns the event reaches the subscriber and the bell', async function () {
    const post = await newPost();
    const channel = channelName.post(post.id);
    const bellChannel = channelName.notifications(users.alice.id);
    const watcher = await subscriber('carol', channel, 'carol on the post');
    const seen = await prisma!.notification.create({ data: { userId: users.alice.id, type: 'LIKE', title: 'old', message: 'old' } });
    const bell = await subscriber('alice', bellChannel, 'alice’s bell', seen.id);

    await redis!.kill();
    const like = await call('POST', `/api/posts/${post.id}/like`, 'bob');
    const afterLike = await prisma!.post.findUniqueOrThrow({ where: { id: post.id } });
    const pending = await likeRows(post.id);
    await sleep(1_500);
    await redis!.restart();
    const backAt = Date.now();

    let sentAt = 0;
    const viaLive = () => watcher.channel(channel).applied.some((a) => pending.some((row) => row.eventId === a.id));
    const viaReload = () => sentAt > 0 && watcher.channel(channel).reloads.some((r) => r.at > sentAt);
    const notificationRow = () => prisma!.notification.findFirst({ where: { userId: users.alice.id, title: 'New like' } });
    const deadline = Date.now() + 15_000;
    let notificationId: string | undefined;
    while (Date.now() < deadline) {
      if (!sentAt) {
        const rows = await likeRows(post.id);
        if (rows[0]?.sentAt) sentAt = rows[0].sentAt.getTime();
      }
      notificationId ??= (await notificationRow())?.id;
      if ((viaLive() || viaReload()) && notificationId && bell.channel(bellChannel).notificationIds.includes(notificationId)) break;
      await sleep(100);
    }
    // What a reloading client reads.
    const reread = await call('GET', `/api/posts/${post.id}`, 'carol');
    const liveAt = watcher.channel(channel).applied.find((a) => pending.some((row) => row.eventId === a.id))?.at;
    const reloadAt = watcher.channel(channel).reloads.find((r) => r.at > sentAt)?.at;
    const bellState = bell.channel(bellChannel);
    report('POST /api/posts/:id/like while Redis is down', {
      'request': `${like.status} in ${like.ms} ms, ${JSON.stringify(like.json)}`,
      'committed': `likesCount ${afterLike.likesCount}, outbox rows ${pending.length} (sent ${pending.filter((r) => r.sentAt).length} while Redis was down)`,
      'relay published after Redis returned': sentAt ? `${Math.max(0, sentAt - backAt)} ms (sentAt, the relay's commit)` : 'never',
      'subscriber got it': liveAt ? `live, ${liveAt - backAt} ms after Redis returned` : reloadAt ? `through a reload (recovered:false), ${reloadAt - backAt} ms after Redis returned` : 'no',
      'subscriber reloads / resubscribe notices': `${watcher.channel(channel).reloads.length} / ${watcher.channel(channel).resubscribeNotices}`,
      'a reload reads likesCount': reread.json.likesCount,
      'bell': notificationId && bellState.notificationIds.includes(notificationId) ? (bellState.recoveredNotifications.length > 0 ? 'from the database (notifications_recovered)' : 'live') : 'missing',
    });

    expect(like.status, JSON.stringify(like.json)).to.equal(200);
    expect(like.json).to.include({ liked: true, likesCount: 1 });
    expect(afterLike.likesCount).to.equal(1);
    expect(pending.length, 'outbox rows of the like').to.equal(1);
    expect(pending[0]!.sentAt, 'published while Redis was down').to.equal(null);
    expect(sentAt, 'the relay published it after Redis returned').to.be.greaterThan(0);
    expect(viaLive() || viaReload(), 'the like reached the subscriber (live, or a reload after it was published)').to.equal(true);
    expect(reread.json.likesCount).to.equal(1);
    expect(notificationId, 'the notification row').to.be.a('string');
    expect(bellState.notificationIds, 'the bell has the notification').to.include(notificationId);
  });

  it('PostgreSQL down: writes and reads answer 5xx JSON at once; after it returns nothing committed before is lost and writes work', async function () {
    const post = await newPost();
    const channel = channelName.post(post.id);
    const watcher = await subscriber('carol', channel, 'carol on the post');
    const before = await call('POST', `/api/posts/${post.id}/like`, 'bob');
    expect(before.status, JSON.stringify(before.json)).to.equal(200);
    await watcher.until(() => watcher.channel(channel).applied.some((a) => a.id !== undefined && !a.id.startsWith('snapshot')), 10_000, 'the first like');

    await pg!.down('fast');
    const downAt = Date.now();
    const write = await call('POST', `/api/posts/${post.id}/like`, 'dave');
    const read = await call('GET', `/api/posts/${post.id}`, 'dave');
    // What a browser asks while the database is down: its socket token (the hook reconnecting or
    // refreshing), and next-auth's session endpoint (SessionProvider, sign-in state).
    const token = await call('GET', '/api/realtime/token', 'dave');
    const session = await call('GET', '/api/auth/session', 'dave');
    await sleep(Math.max(0, 5_000 - (Date.now() - downAt)));
    const writeLater = await call('POST', `/api/posts/${post.id}/like`, 'dave');
    await pg!.up();
    const upAt = Date.now();

    // The app's pool reconnects: the same write, retried, goes through.
    let retried = await call('POST', `/api/posts/${post.id}/like`, 'dave');
    let retries = 1;
    while (retried.status !== 200 && Date.now() - upAt < 15_000) {
      await sleep(200);
      retried = await call('POST', `/api/posts/${post.id}/like`, 'dave');
      retries++;
    }
    const firstOkMs = Date.now() - upAt;
    await watcher.until(() => watcher.channel(channel).applied.filter((a) => !a.id.startsWith('snapshot')).length >= 2, 10_000, 'both likes').catch(() => undefined);
    const likes = await prisma!.like.findMany({ where: { postId: post.id } });
    const rows = await likeRows(post.id);
    const current = await call('GET', `/api/posts/${post.id}`, 'carol');
    report('PostgreSQL stopped under the app', {
      'like while down': `${write.status} in ${write.ms} ms, ${write.contentType}, ${JSON.stringify(write.json)}`,
      'read while down': `${read.status} in ${read.ms} ms, ${JSON.stringify(read.json)}`,
      'like 5 s into the outage': `${writeLater.status} in ${writeLater.ms} ms`,
      'GET /api/realtime/token while down': `${token.status} ${token.status === 200 ? `(a token; fields ${Object.keys(token.json).join(', ')})` : JSON.stringify(token.json)}`,
      'GET /api/auth/session while down': `${session.status} ${JSON.stringify(session.json)}; session cookie deleted: ${/next-auth\.session-token=;/.test(session.setCookie) ? 'yes' : 'no'}`,
      'back → first good write': `${firstOkMs} ms (${retries} attempts)`,
      'likes in the database after': `${likes.length} (${likes.map((l) => (l.userId === users.bob.id ? 'bob' : l.userId === users.dave.id ? 'dave' : '?')).join(', ')})`,
      'outbox rows / sent': `${rows.length} / ${rows.filter((r) => r.sentAt).length}`,
      'events the subscriber got': watcher.channel(channel).applied.filter((a) => rows.some((r) => r.eventId === a.id)).length,
    });

    // Every check, so that one failure does not hide the others.
    const problems: string[] = [];
    for (const [name, answer] of Object.entries({ 'like while down': write, 'read while down': read, 'like 5 s into the outage': writeLater })) {
      if (answer.status < 500 || answer.status > 599) problems.push(`${name}: ${answer.status} ${JSON.stringify(answer.json)} (expected a 5xx)`);
      if (!/application\/json/.test(answer.contentType) || !('error' in answer.json)) problems.push(`${name}: not a JSON error (${answer.contentType})`);
      if (answer.ms >= 10_000) problems.push(`${name}: took ${answer.ms} ms`);
    }
    // A signed-in user is not signed out by a database outage: the socket token route must not
    // answer 401 (the hook then stops for good, 'signed_out'; a token or a 5xx keep it trying),
    // and the session endpoint must not delete the session cookie.
    if (token.status === 401 || (token.status !== 200 && (token.status < 500 || token.status > 599))) problems.push(`GET /api/realtime/token: ${token.status} ${JSON.stringify(token.json)} (expected a token or a 5xx; a 401 makes the hook stop as signed out)`);
    if (/next-auth\.session-token=;/.test(session.setCookie)) problems.push('GET /api/auth/session deleted the session cookie');
    if (retried.status !== 200) problems.push(`the write after the return: ${retried.status} ${JSON.stringify(retried.json)}`);
    const likers = likes.map((l) => l.userId).sort();
    if (JSON.stringify(likers) !== JSON.stringify([users.bob.id, users.dave.id].sort())) problems.push(`likes after: ${likers.length}`);
    if (current.json.likesCount !== 2) problems.push(`likesCount after: ${String(current.json.likesCount)}`);
    expect(problems).to.deep.equal([]);
    expect(rows.length).to.equal(2);
    // The relay catches up: every row committed (before and after the outage) published and
    // delivered, within 20 s of the database's return (its poll is 5 s, its backoff ≤ 1 s here).
    await watcher.until(() => rows.every((r) => watcher.channel(channel).ids.has(r.eventId)), Math.max(1_000, upAt + 20_000 - Date.now()), 'every like event');
    const caughtUp = Date.now() - upAt;
    const unsent = await prisma!.outboxEvent.count({ where: { channels: { has: channel }, sentAt: null } });
    process.stdout.write(`      PostgreSQL back → every like event delivered: ${caughtUp} ms; unsent rows after: ${unsent}\n`);
  });
});
