/**
 * End to end, in a real browser (Debian's Chromium through playwright-core): the admin page of
 * the real app (`next start`), over two real WebSocket server processes on one Redis (a key
 * prefix of this file's own), signed in through the real sign-in form with the seeded demo
 * accounts. Carol (the demo admin) sees both nodes, and a node's connection count changes on the
 * open page, without a reload, when a client connects to it and when it leaves; Bob (no admin
 * flag) sees no link, gets 404 for the page and 403 from its API.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createPrismaClient, type PrismaClient } from '../../lib/db/prisma-client.ts';
import { seedDemoData } from '../../scripts/db/seed.ts';
import { TestClient } from '../../websocket-server/test/support/client.ts';
import { startServer, type ServerProcess } from '../../websocket-server/test/support/server-process.ts';
import { mintSessionToken } from '../../websocket-server/test/support/tokens.ts';
import { testDatabaseUrl, testRedisPrefix, testRedisUrl, TEST_NEXTAUTH_SECRET, TEST_PUBLISH_SECRET } from '../support/env.ts';
import { freePort } from '../support/ports.ts';
import { artifactPath, launchBrowser, signedInPage } from './support/browser.ts';
import { ensureAppBuilt, startApp, type AppProcess } from './support/next-app.ts';

const TTL_MS = 1_500;

const nodeCount = (page: Page, nodeId: string) =>
  page.locator(`[data-node-id="${nodeId}"] [data-testid=admin-node-connections]`).getAttribute('data-count').then(Number);

/** Waits until the page shows `count` connections on `nodeId`; resolves with the ms it took. */
async function shows(page: Page, nodeId: string, count: number, timeoutMs = 10_000): Promise<number> {
  const started = Date.now();
  await page.waitForSelector(`[data-node-id="${nodeId}"] [data-testid=admin-node-connections][data-count="${count}"]`, { timeout: timeoutMs });
  return Date.now() - started;
}

describe('e2e: the admin page in a real browser', function () {
  this.timeout(60_000);

  let prisma: PrismaClient;
  let wsA: ServerProcess;
  let wsB: ServerProcess;
  let app: AppProcess;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  const clients: TestClient[] = [];
  const pageErrors: string[] = [];
  const tag = randomBytes(3).toString('hex');
  const nodeA = `e2e-admin-a-${tag}`;
  const nodeB = `e2e-admin-b-${tag}`;

  before(async function () {
    this.timeout(300_000);
    const build = await ensureAppBuilt();
    if (build.built) console.log(`      (next build took ${(build.ms / 1000).toFixed(1)} s)`);
    await seedDemoData(testDatabaseUrl());
    prisma = createPrismaClient(testDatabaseUrl(), { poolMax: 2 });
    const prefix = testRedisPrefix(`admin-e2e-${tag}:`);
    const env = (nodeId: string, port = '0') => ({ WS_PORT: port, NODE_ID: nodeId, REDIS_CHANNEL_PREFIX: prefix, NODE_STATS_TTL_MS: String(TTL_MS), LOG_LEVEL: 'info' });
    const wsPort = await freePort();
    [wsA, wsB] = await Promise.all([startServer({ env: env(nodeA, String(wsPort)) }), startServer({ env: env(nodeB) })]);
    app = await startApp({
      DATABASE_URL: testDatabaseUrl(),
      DATABASE_POOL_MAX: '4',
      NEXTAUTH_SECRET: TEST_NEXTAUTH_SECRET,
      REDIS_URL: testRedisUrl(),
      REDIS_CHANNEL_PREFIX: prefix,
      WS_PUBLISH_URL: wsA.httpUrl,
      WS_PUBLISH_SECRET: TEST_PUBLISH_SECRET,
      WS_PUBLIC_URL: `ws://127.0.0.1:${wsPort}`,
    });
    browser = await launchBrowser();
  });

  after(async function () {
    this.timeout(30_000);
    for (const client of clients) client.close();
    for (const context of contexts) await context.close().catch(() => {});
    await browser?.close().catch(() => {});
    await app?.stop();
    await Promise.all([wsA?.stop(), wsB?.stop()]);
    await prisma?.$disconnect();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') {
      console.log(`      app log (tail):\n${app?.log().slice(-3000)}`);
      console.log(`      page errors: ${JSON.stringify(pageErrors)}`);
    }
  });

  const signIn = async (email: string) => {
    const session = await signedInPage(browser, app.url, email);
    contexts.push(session.context);
    session.page.on('pageerror', (error) => pageErrors.push(`${email}: ${error.message}`));
    return session;
  };

  it('the admin follows the header link and sees both nodes; a client connecting to a node shows up live, and leaving too', async () => {
    const { page } = await signIn('carol@example.com');
    await page.click('[data-testid=admin-link]');
    await page.waitForURL('**/admin');
    await page.waitForSelector('[data-testid=admin-dashboard]');
    // Carol's own tab holds a socket on node A (WS_PUBLIC_URL).
    await page.waitForSelector('[data-testid=connection-status][data-state=open]', { timeout: 15_000 });
    await shows(page, nodeA, 1);
    await page.waitForSelector(`[data-node-id="${nodeB}"]`);
    expect(await nodeCount(page, nodeB)).to.equal(0);
    await page.evaluate(() => ((window as unknown as { __e2eMarker: string }).__e2eMarker = 'no-reload'));

    const bob = await prisma.user.findUniqueOrThrow({ where: { email: 'bob@example.com' } });
    const t0 = Date.now();
    const client = await TestClient.connect(wsB.url, { token: await mintSessionToken(bob.id) });
    clients.push(client);
    await shows(page, nodeB, 1);
    const connectMs = Date.now() - t0;
    expect(await page.locator('[data-testid=admin-total-connections]').getAttribute('data-value')).to.equal('2');
    await page.screenshot({ path: artifactPath('admin-page.png'), fullPage: true });

    const t1 = Date.now();
    client.close();
    await client.closed;
    await shows(page, nodeB, 0);
    const leaveMs = Date.now() - t1;
    console.log(`      the page showed the connect after ${connectMs} ms, the close after ${leaveMs} ms (nodes write every ${TTL_MS / 3} ms, the page polls every 2 s)`);
    // One node write and one poll at most, on a loaded machine.
    expect(connectMs).to.be.below(TTL_MS / 3 + 2_000 + 1_500);
    expect(leaveMs).to.be.below(TTL_MS / 3 + 2_000 + 1_500);
    expect(await page.evaluate(() => (window as unknown as { __e2eMarker?: string }).__e2eMarker), 'the page was reloaded').to.equal('no-reload');
    expect(pageErrors).to.deep.equal([]);
  });

  it('a user without the admin flag sees no link, gets 404 for the page and 403 from its API', async () => {
    const { page } = await signIn('bob@example.com');
    // The header is rendered (signed in), and has no admin link; the admin's did (test above).
    await page.waitForSelector('[data-testid=signed-in-as]');
    expect(await page.locator('[data-testid=admin-link]').count()).to.equal(0);
    const response = await page.goto('/admin');
    expect(response?.status()).to.equal(404);
    expect(await page.locator('[data-testid=admin-dashboard]').count()).to.equal(0);
    const api = await page.evaluate(async () => (await fetch('/api/admin/stats')).status);
    expect(api).to.equal(403);
  });
});
