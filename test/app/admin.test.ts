/**
 * GET /api/admin/stats and the /admin page over HTTP against the real app (`next start` of the
 * e2e build) and the real WebSocket server (in-memory broker, the single-machine default), with
 * session cookies minted by next-auth's own `encode`: 401 signed out, 403 for a user without
 * `isAdmin` (read from the database on every request), 200 for the seeded admin (Carol), whose
 * answer lists the node with the sockets really open on it and the outbox backlog as the rows
 * in PostgreSQL say.
 */
import { expect } from 'chai';
import { createPrismaClient, type PrismaClient } from '../../lib/db/prisma-client.ts';
import { seedDemoData } from '../../scripts/db/seed.ts';
import { TestClient } from '../../websocket-server/test/support/client.ts';
import { startServer, type ServerProcess } from '../../websocket-server/test/support/server-process.ts';
import { mintSessionToken } from '../../websocket-server/test/support/tokens.ts';
import { testDatabaseUrl, TEST_NEXTAUTH_SECRET, TEST_PUBLISH_SECRET } from '../support/env.ts';
import { ensureAppBuilt, startApp, type AppProcess } from '../e2e/support/next-app.ts';

type Json = Record<string, any>;

describe('admin: GET /api/admin/stats and /admin', function () {
  this.timeout(30_000);

  let prisma: PrismaClient;
  let ws: ServerProcess;
  let app: AppProcess;
  const clients: TestClient[] = [];
  const ids = { alice: '', bob: '', carol: '' };
  const cookies = { alice: '', bob: '', carol: '' };
  const outboxIds: bigint[] = [];

  async function call(path: string, who?: keyof typeof cookies): Promise<{ status: number; json: Json; response: Response }> {
    const response = await fetch(`${app.url}${path}`, {
      headers: who ? { cookie: `next-auth.session-token=${cookies[who]}` } : {},
      redirect: 'manual',
    });
    const json = (await response.clone().json().catch(() => ({}))) as Json;
    return { status: response.status, json, response };
  }

  /** Polls the admin API as Carol until `ok` holds. */
  async function statsUntil(ok: (json: Json) => boolean, timeoutMs = 8_000): Promise<Json> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { status, json } = await call('/api/admin/stats', 'carol');
      expect(status).to.equal(200);
      if (ok(json)) return json;
      if (Date.now() > deadline) throw new Error(`condition not met; last answer ${JSON.stringify(json)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  before(async function () {
    this.timeout(300_000);
    await ensureAppBuilt();
    await seedDemoData(testDatabaseUrl());
    prisma = createPrismaClient(testDatabaseUrl(), { poolMax: 2 });
    for (const name of Object.keys(ids) as (keyof typeof ids)[]) {
      const user = await prisma.user.findUniqueOrThrow({ where: { email: `${name}@example.com` } });
      ids[name] = user.id;
      cookies[name] = await mintSessionToken(user.id, { claims: { name: user.name, email: user.email } });
    }
    ws = await startServer({ broker: 'memory', env: { NODE_ID: 'admin-test-node', NODE_STATS_TTL_MS: '1500', LOG_LEVEL: 'info' } });
    // No outbox relay: rows written here stay unsent, as they would with every relay down.
    app = await startApp({
      DATABASE_URL: testDatabaseUrl(),
      DATABASE_POOL_MAX: '3',
      NEXTAUTH_SECRET: TEST_NEXTAUTH_SECRET,
      REDIS_URL: '',
      WS_PUBLISH_URL: ws.httpUrl,
      WS_PUBLISH_SECRET: TEST_PUBLISH_SECRET,
    });
  });

  after(async () => {
    for (const client of clients) client.close();
    await app?.stop();
    await ws?.stop();
    if (prisma) {
      await prisma.outboxEvent.deleteMany({ where: { id: { in: outboxIds } } });
      await prisma.user.update({ where: { id: ids.alice }, data: { isAdmin: false } }).catch(() => {});
      await prisma.$disconnect();
    }
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(`      app log (tail):\n${app?.log().slice(-3000)}`);
  });

  it('401 signed out, 403 for a user who is not an admin, 200 for the admin', async () => {
    const anonymous = await call('/api/admin/stats');
    expect(anonymous.status).to.equal(401);
    expect(anonymous.json).to.include({ error: 'unauthorized' });
    const bob = await call('/api/admin/stats', 'bob');
    expect(bob.status).to.equal(403);
    expect(bob.json).to.include({ error: 'forbidden' });
    expect(bob.json).to.not.have.property('nodes');
    const carol = await call('/api/admin/stats', 'carol');
    expect(carol.status).to.equal(200);
    expect(carol.response.headers.get('cache-control')).to.equal('no-store');
    expect(carol.json.websocket).to.include({ status: 'ok', store: 'memory', nodeId: 'admin-test-node', url: `${ws.httpUrl}/stats` });
  });

  it('the flag is read from the database each time: granting and revoking it takes effect at the next request', async () => {
    expect((await call('/api/admin/stats', 'alice')).status).to.equal(403);
    await prisma.user.update({ where: { id: ids.alice }, data: { isAdmin: true } });
    expect((await call('/api/admin/stats', 'alice')).status).to.equal(200);
    await prisma.user.update({ where: { id: ids.alice }, data: { isAdmin: false } });
    expect((await call('/api/admin/stats', 'alice')).status).to.equal(403);
  });

  it('lists the node with the sockets open on it, and the totals follow a socket that opens and closes', async () => {
    const before = await statsUntil((json) => json.nodes.length === 1);
    const node = before.nodes[0];
    expect(node).to.include({ nodeId: 'admin-test-node', pid: ws.child.pid, broker: 'memory' });
    const base = node.connections as number;
    expect(before.totals).to.include({ nodes: 1, connections: base });

    const client = await TestClient.connect(ws.url, { token: await mintSessionToken(ids.bob) });
    clients.push(client);
    await client.mustSubscribe(`notifications_${ids.bob}`);
    const open = await statsUntil((json) => json.totals.connections === base + 1);
    expect(open.nodes[0].subscriptions).to.be.at.least(1);
    expect(open.nodes[0].users).to.be.at.least(1);
    for (const key of ['deliveredPerSecond', 'receivedPerSecond', 'publishFailuresTotal', 'slowConsumerClosesTotal', 'eventsDeliveredTotal']) {
      expect(open.totals[key], key).to.be.a('number');
    }

    client.close();
    await client.closed;
    await statsUntil((json) => json.totals.connections === base);
  });

  it('the outbox backlog counts unsent and failed rows as they are in PostgreSQL', async () => {
    const { json: before } = await call('/api/admin/stats', 'carol');
    expect(before.outbox).to.be.an('object');
    const minuteAgo = new Date(Date.now() - 90_000);
    const rows = await Promise.all([
      prisma.outboxEvent.create({ data: { channels: ['feed_x'], type: 'feed_update', data: {}, createdAt: minuteAgo, attempts: 3, lastError: 'HTTP 503 broker_unavailable' } }),
      prisma.outboxEvent.create({ data: { channels: ['feed_x'], type: 'feed_update', data: {} } }),
      prisma.outboxEvent.create({ data: { channels: ['feed_x'], type: 'feed_update', data: {}, failedAt: new Date(), attempts: 1, lastError: 'HTTP 400' } }),
      prisma.outboxEvent.create({ data: { channels: ['feed_x'], type: 'feed_update', data: {}, sentAt: new Date(), attempts: 1 } }),
    ]);
    outboxIds.push(...rows.map((row) => row.id));
    const { json: after } = await call('/api/admin/stats', 'carol');
    expect(after.outbox.pending - before.outbox.pending).to.equal(2);
    expect(after.outbox.failed - before.outbox.failed).to.equal(1);
    expect(after.outbox.oldestPendingAgeSeconds).to.be.at.least(90);
    expect(Date.parse(after.outbox.oldestPendingAt)).to.be.at.most(minuteAgo.getTime());
    expect(after.outbox.maxAttempts).to.be.at.least(3);

    await prisma.outboxEvent.updateMany({ where: { id: { in: outboxIds } }, data: { sentAt: new Date() } });
    const { json: sent } = await call('/api/admin/stats', 'carol');
    expect(sent.outbox.pending).to.equal(before.outbox.pending);
  });

  it('the page: the sign-in page when signed out, 404 for a user who is not an admin, the dashboard for the admin', async () => {
    const anonymous = await call('/admin');
    expect(anonymous.status).to.be.oneOf([303, 307, 308]);
    expect(anonymous.response.headers.get('location')).to.match(/\/signin\?callbackUrl=%2Fadmin|\/signin\?callbackUrl=\/admin/);
    const bob = await call('/admin', 'bob');
    expect(bob.status).to.equal(404);
    expect(await bob.response.text()).to.not.contain('admin-dashboard');
    const carol = await call('/admin', 'carol');
    expect(carol.status).to.equal(200);
    const html = await carol.response.text();
    expect(html).to.contain('data-testid="admin-dashboard"');
    expect(html).to.contain('admin-test-node');
    // The header's link is there for the admin only.
    expect(html).to.contain('data-testid="admin-link"');
    expect(await (await call('/', 'bob')).response.text()).to.not.contain('data-testid="admin-link"');
  });

  it('still answers 200 when the WebSocket server is down, saying so', async () => {
    await ws.stop();
    const { status, json } = await call('/api/admin/stats', 'carol');
    expect(status).to.equal(200);
    expect(json.websocket).to.include({ status: 'unavailable', error: 'ECONNREFUSED' });
    expect(json.nodes).to.deep.equal([]);
    expect(json.totals).to.include({ nodes: 0, connections: 0 });
    expect(json.outbox).to.be.an('object');
  });
});
