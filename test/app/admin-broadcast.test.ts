/**
 * POST /api/admin/broadcast against the running app (`next start` of the e2e build), the real
 * WebSocket server on Redis and the outbox relay: operators only (401 signed out, 403 for a
 * signed-in non-admin, 422 for a bad body), and an admin's broadcast reaches a socket that
 * subscribed to nothing, through the outbox. Sockets open with real session cookies from
 * next-auth's credentials flow.
 */
import { expect } from 'chai';
import { createPrismaClient, type PrismaClient } from '../../lib/db/prisma-client.ts';
import { TestClient, type Frame } from '../../websocket-server/test/support/client.ts';
import { startServer, type ServerProcess } from '../../websocket-server/test/support/server-process.ts';
import { testDatabaseUrl, testRedisPrefix, testRedisUrl, TEST_NEXTAUTH_SECRET, TEST_PUBLISH_SECRET } from '../support/env.ts';
import { ensureAppBuilt, startApp, type AppProcess } from '../e2e/support/next-app.ts';
import { Browser, createUser } from './support/auth-flow.ts';
import { startRelay, type RelayProcess } from './support/outbox-relay.ts';

const broadcastOf = (message: string) => (f: Frame) => f.type === 'broadcast' && (f.data as { message?: string }).message === message;

describe('app › POST /api/admin/broadcast', function () {
  this.timeout(60_000);
  let prisma: PrismaClient;
  let ws: ServerProcess;
  let app: AppProcess;
  let relay: RelayProcess;
  let admin: Browser;
  let member: Browser;
  let socket: TestClient;

  before(async function () {
    this.timeout(300_000);
    await ensureAppBuilt();
    prisma = createPrismaClient(testDatabaseUrl(), { poolMax: 2 });
    const prefix = testRedisPrefix('admin-broadcast:');
    ws = await startServer({ env: { REDIS_CHANNEL_PREFIX: prefix, LOG_LEVEL: 'info' } });
    app = await startApp({
      DATABASE_URL: testDatabaseUrl(),
      DATABASE_POOL_MAX: '3',
      NEXTAUTH_SECRET: TEST_NEXTAUTH_SECRET,
      REDIS_URL: testRedisUrl(),
      REDIS_CHANNEL_PREFIX: prefix,
      WS_PUBLISH_URL: ws.httpUrl,
      WS_PUBLISH_SECRET: TEST_PUBLISH_SECRET,
    });
    relay = await startRelay({ REDIS_URL: testRedisUrl(), REDIS_CHANNEL_PREFIX: prefix });
    const operator = await createUser(prisma, { name: 'operator' });
    await prisma.user.update({ where: { id: operator.id }, data: { isAdmin: true } });
    const user = await createUser(prisma, { name: 'member' });
    admin = new Browser(app.url);
    await admin.signIn(operator.email);
    member = new Browser(app.url);
    await member.signIn(user.email);
    // The member's socket, as the page opens it: its session cookie, and no subscribe at all.
    socket = await TestClient.connect(ws.url, { token: member.sessionToken!, via: 'cookie' });
  });

  after(async function () {
    this.timeout(30_000);
    socket?.close();
    await app?.stop();
    await relay?.stop();
    await ws?.stop();
    await prisma?.$disconnect();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') {
      console.log(`      app log (tail):\n${app?.log().slice(-2500)}\n      server log (tail):\n${ws?.log().slice(-2500)}\n      relay log (tail):\n${relay?.log().slice(-2500)}`);
    }
  });

  it('refuses a signed-out caller with 401 and a non-admin with 403, and enqueues nothing for them', async () => {
    const before = await prisma.outboxEvent.count({ where: { type: 'broadcast' } });
    const anonymous = await new Browser(app.url).call('POST', '/api/admin/broadcast', { message: 'from nobody', level: 'info' });
    expect(anonymous.status).to.equal(401);
    const refused = await member.call('POST', '/api/admin/broadcast', { message: 'from a member', level: 'critical' });
    expect(refused.status).to.equal(403);
    expect(refused.json).to.include({ error: 'forbidden' });
    // Even a bad body is 403 for a non-admin: the check comes first.
    expect((await member.call('POST', '/api/admin/broadcast', { level: 'nope' })).status).to.equal(403);
    expect(await prisma.outboxEvent.count({ where: { type: 'broadcast' } })).to.equal(before);
  });

  it('answers 422 to an admin for a bad body', async () => {
    for (const body of [{ message: '', level: 'info' }, { message: 'x', level: 'urgent' }, { message: 'x'.repeat(501), level: 'info' }, { message: 'x', level: 'info', extra: 1 }, 'not json']) {
      const { status, json } = await admin.call('POST', '/api/admin/broadcast', body);
      expect(status, JSON.stringify(body)).to.equal(422);
      expect(json).to.include({ error: 'unprocessable' });
    }
  });

  it('delivers an admin broadcast through the outbox to a socket with no subscription', async () => {
    const started = Date.now();
    const { status, json } = await admin.call('POST', '/api/admin/broadcast', { message: '  Scheduled maintenance at 03:00 UTC  ', level: 'warning' });
    expect(status).to.equal(202);
    expect(json).to.deep.include({ queued: true, broadcast: { message: 'Scheduled maintenance at 03:00 UTC', level: 'warning' } });
    const push = await socket.next(broadcastOf('Scheduled maintenance at 03:00 UTC'), 10_000);
    console.log(`      admin POST -> socket: ${Date.now() - started} ms (through the outbox relay)`);
    expect(push).to.deep.include({ channel: 'broadcast', data: { message: 'Scheduled maintenance at 03:00 UTC', level: 'warning' } });
    // The refused ones of the first test never arrived: this is the only broadcast the socket saw.
    expect(socket.pushes('broadcast').map((f) => (f.data as { message: string }).message)).to.deep.equal(['Scheduled maintenance at 03:00 UTC']);
    const row = await prisma.outboxEvent.findFirstOrThrow({ where: { type: 'broadcast' }, orderBy: { id: 'desc' } });
    expect(row.channels).to.deep.equal(['broadcast']);
  });
});
