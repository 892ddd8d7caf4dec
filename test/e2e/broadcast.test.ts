/**
 * End to end, in a real browser (Debian's Chromium through playwright-core), against the real
 * Next.js app, the WebSocket server on Redis, the outbox relay and the run's scratch database
 * seeded with the demo data (Carol is the demo operator, User.isAdmin):
 *
 * - an operator's broadcast (POST /api/admin/broadcast) shows as a banner on pages that are
 *   already open, with the level's role (status, alert for critical), and can be dismissed; a
 *   dismissed notice stays hidden after a reload although the server sends it again at connect,
 *   while a new tab, which never dismissed it, shows it at once;
 * - the header bell shows no badge at 0 unread (the element is absent) and one reading 1 after
 *   a like makes the first notification.
 */
import { expect } from 'chai';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createPrismaClient, type PrismaClient } from '../../lib/db/prisma-client.ts';
import { seedDemoData } from '../../scripts/db/seed.ts';
import { startServer, type ServerProcess } from '../../websocket-server/test/support/server-process.ts';
import { testDatabaseUrl, testRedisPrefix, testRedisUrl, TEST_NEXTAUTH_SECRET, TEST_PUBLISH_SECRET } from '../support/env.ts';
import { Browser as HttpBrowser, createUser, PASSWORD } from '../app/support/auth-flow.ts';
import { startRelay, type RelayProcess } from '../app/support/outbox-relay.ts';
import { freePort } from '../support/ports.ts';
import { artifactPath, launchBrowser, signedInPage } from './support/browser.ts';
import { ensureAppBuilt, startApp, type AppProcess } from './support/next-app.ts';

const BANNER = '[data-testid=broadcast-banner]';

/** The socket is open and the bell's channel is subscribed: every frame the server sent before
 * the subscribe reply (`connected`, a retained broadcast) has been handled by the page. */
async function live(page: Page): Promise<void> {
  await page.waitForSelector('[data-testid=connection-status][data-state=open]', { timeout: 15_000 });
  await page.waitForSelector('[data-testid=bell-button][data-channel=subscribed]', { timeout: 10_000 });
}

describe('e2e: operator broadcast banner and the bell badge', function () {
  this.timeout(60_000);

  let prisma: PrismaClient;
  let ws: ServerProcess;
  let app: AppProcess;
  let relay: RelayProcess;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  const pageErrors: string[] = [];
  let carol: HttpBrowser;

  const track = (session: { context: BrowserContext; page: Page }) => {
    contexts.push(session.context);
    session.page.on('pageerror', (error) => pageErrors.push(`${session.page.url()}: ${error.message}`));
    return session;
  };

  before(async function () {
    this.timeout(300_000);
    const build = await ensureAppBuilt();
    if (build.built) console.log(`      (next build took ${(build.ms / 1000).toFixed(1)} s)`);
    await seedDemoData(testDatabaseUrl());
    prisma = createPrismaClient(testDatabaseUrl(), { poolMax: 2 });
    const prefix = testRedisPrefix('e2e-broadcast:');
    const wsPort = await freePort();
    ws = await startServer({ env: { WS_PORT: String(wsPort), REDIS_CHANNEL_PREFIX: prefix, LOG_LEVEL: 'info' } });
    app = await startApp({
      DATABASE_URL: testDatabaseUrl(),
      DATABASE_POOL_MAX: '4',
      NEXTAUTH_SECRET: TEST_NEXTAUTH_SECRET,
      REDIS_URL: testRedisUrl(),
      REDIS_CHANNEL_PREFIX: prefix,
      WS_PUBLISH_URL: ws.httpUrl,
      WS_PUBLISH_SECRET: TEST_PUBLISH_SECRET,
      WS_PUBLIC_URL: `ws://127.0.0.1:${wsPort}`,
    });
    relay = await startRelay({ REDIS_URL: testRedisUrl(), REDIS_CHANNEL_PREFIX: prefix });
    browser = await launchBrowser();
    // The operator publishes over HTTP with her own session, as an admin tool would.
    carol = new HttpBrowser(app.url);
    await carol.signIn('carol@example.com', 'password');
  });

  after(async function () {
    this.timeout(30_000);
    for (const context of contexts) await context.close().catch(() => {});
    await browser?.close().catch(() => {});
    await app?.stop();
    await relay?.stop();
    await ws?.stop();
    await prisma?.$disconnect();
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      for (const [i, context] of contexts.entries()) {
        for (const page of context.pages()) await page.screenshot({ path: artifactPath(`broadcast-${i}.png`) }).catch(() => {});
      }
      console.log(`      app log (tail):\n${app?.log().slice(-2500)}\n      ws log (tail):\n${ws?.log().slice(-2500)}\n      relay log (tail):\n${relay?.log().slice(-2500)}`);
    }
  });

  it('shows a broadcast on open pages, dismissable, and keeps a dismissed one hidden after a reload', async () => {
    const bob = track(await signedInPage(browser, app.url, 'bob@example.com'));
    const alice = track(await signedInPage(browser, app.url, 'alice@example.com'));
    await Promise.all([live(bob.page), live(alice.page)]);
    expect(await bob.page.locator(BANNER).count()).to.equal(0);

    const started = Date.now();
    const warning = await carol.call('POST', '/api/admin/broadcast', { message: 'Maintenance tonight at 03:00 UTC', level: 'warning' });
    expect(warning.status).to.equal(202);
    for (const page of [bob.page, alice.page]) {
      const banner = page.locator(BANNER);
      await banner.waitFor({ timeout: 10_000 });
      expect(await banner.textContent()).to.include('Maintenance tonight at 03:00 UTC');
      expect(await banner.getAttribute('role')).to.equal('status');
      expect(await banner.getAttribute('data-level')).to.equal('warning');
    }
    console.log(`      admin POST -> banner on two open pages: ${Date.now() - started} ms`);

    // A newer notice replaces the shown one; critical is an alert.
    expect((await carol.call('POST', '/api/admin/broadcast', { message: 'Read-only mode now', level: 'critical' })).status).to.equal(202);
    await bob.page.waitForSelector(`${BANNER}[data-level=critical]`, { timeout: 10_000 });
    expect(await bob.page.locator(BANNER).getAttribute('role')).to.equal('alert');
    expect(await bob.page.locator(BANNER).count()).to.equal(1);
    expect(await bob.page.locator(BANNER).textContent()).to.include('Read-only mode now');

    await bob.page.click('[data-testid=broadcast-dismiss]');
    await bob.page.waitForSelector(BANNER, { state: 'detached', timeout: 5_000 });
    expect(await alice.page.locator(BANNER).count()).to.equal(1); // dismissing is per tab

    // Positive control: a new tab has not dismissed it, and the server sends the retained
    // notice right after `connected`, so it shows at once.
    const fresh = track({ context: bob.context, page: await bob.context.newPage() });
    await fresh.page.goto('/');
    await live(fresh.page);
    await fresh.page.waitForSelector(`${BANNER}[data-level=critical]`, { timeout: 10_000 });
    // The dismissing tab reloads: the same notice arrives again (before the bell's subscribe
    // reply) and stays hidden.
    await bob.page.reload();
    await live(bob.page);
    expect(await bob.page.locator(BANNER).count()).to.equal(0);
    expect(pageErrors).to.deep.equal([]);
  });

  it('shows no bell badge at 0 unread and one reading 1 after the first notification', async () => {
    const creator = await createUser(prisma, { name: 'badge', isCreator: true });
    const post = await prisma.post.create({ data: { authorId: creator.id, title: 'Badge post', content: 'Like me.' } });
    const session = track(await signedInPage(browser, app.url, creator.email, PASSWORD));
    await live(session.page);
    expect(await session.page.locator('[data-testid=bell-count]').getAttribute('data-count')).to.equal('0');
    expect(await session.page.locator('[data-testid=bell-badge]').count()).to.equal(0);

    const fan = new HttpBrowser(app.url);
    await fan.signIn('bob@example.com', 'password');
    expect((await fan.call('POST', `/api/posts/${post.id}/like`)).status).to.be.oneOf([200, 201]);
    const badge = session.page.locator('[data-testid=bell-badge]');
    await badge.waitFor({ timeout: 10_000 });
    expect((await badge.textContent())?.trim()).to.equal('1');
    expect(await session.page.locator('[data-testid=bell-count]').getAttribute('data-count')).to.equal('1');
    expect(pageErrors).to.deep.equal([]);
  });
});
