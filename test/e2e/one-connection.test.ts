/**
 * One connection per browser, in a real browser: Debian's Chromium (playwright-core) against the
 * real Next.js app (`next start`), the real WebSocket server (child process, Redis broker), an
 * outbox relay, real Redis and the run's scratch PostgreSQL. One browser context is one browser
 * profile: its pages share BroadcastChannel and Web Locks, so alice's three tabs share one
 * socket (hooks/realtime/shared/, ADR 0009). What the server counts is read from its /metrics
 * (`ws_connections`, open authenticated connections, and `ws_connections_total`, accepted since
 * start), and which tab holds a socket from Chromium's own WebSocket events.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createPrismaClient, type PrismaClient } from '../../lib/db/prisma-client.ts';
import { seedDemoData } from '../../scripts/db/seed.ts';
import { startServer, type ServerProcess } from '../../websocket-server/test/support/server-process.ts';
import { testDatabaseUrl, testRedisPrefix, testRedisUrl, TEST_NEXTAUTH_SECRET, TEST_PUBLISH_SECRET } from '../support/env.ts';
import { launchBrowser, signedInPage } from './support/browser.ts';
import { ensureAppBuilt, startApp, type AppProcess } from './support/next-app.ts';
import { startRelay, type RelayProcess } from '../app/support/outbox-relay.ts';
import { freePort } from '../support/ports.ts';
import { watchFor } from './support/watch.ts';

interface Tab {
  name: string;
  page: Page;
  /** WebSockets this page opened (Chromium's own events). */
  sockets: number;
  /** GETs that reload state: the post (LivePost on recovered:false) and the notifications page. */
  reloads: string[];
}

async function metric(ws: ServerProcess, name: string): Promise<number> {
  const text = await (await fetch(`${ws.httpUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`no ${name} in /metrics`);
  return Number(line.split(' ')[1]);
}

/** Polls /metrics until `name` is `value`; fails with the last value seen. */
async function metricReaches(ws: ServerProcess, name: string, value: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let seen = await metric(ws, name);
  while (seen !== value) {
    if (Date.now() > deadline) throw new Error(`${name} stayed ${seen}, expected ${value}`);
    await new Promise((r) => setTimeout(r, 50));
    seen = await metric(ws, name);
  }
}

const commentCount = (page: Page, text: string) =>
  page.locator('[data-testid=comment-item]', { hasText: text }).count();

describe('e2e: one connection per browser', function () {
  this.timeout(90_000);

  let prisma: PrismaClient;
  let ws: ServerProcess;
  let app: AppProcess;
  let relay: RelayProcess;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  const pageErrors: string[] = [];
  const measured: Record<string, number> = {};
  let postId: string;
  let aliceId: string;
  let alice: BrowserContext;
  let bob: { context: BrowserContext; page: Page };
  let tabs: Tab[] = [];

  const track = (page: Page, name: string): Tab => {
    const tab: Tab = { name, page, sockets: 0, reloads: [] };
    page.on('pageerror', (error) => pageErrors.push(`${name}: ${error.message}`));
    page.on('websocket', () => tab.sockets++);
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (request.method() === 'GET' && (url.pathname === `/api/posts/${postId}` || url.pathname === '/api/notifications')) tab.reloads.push(url.pathname);
    });
    return tab;
  };

  /** The socket is open (the hub's state) and the page's channels are confirmed. */
  const live = async (page: Page) => {
    await page.waitForSelector('[data-testid=connection-status][data-state=open]', { timeout: 15_000 });
    await page.waitForSelector('[data-testid=bell-button][data-channel=subscribed]', { timeout: 10_000 });
    await page.waitForSelector('[data-testid=post][data-channel=subscribed]', { timeout: 10_000 });
  };

  const comment = async (text: string) => {
    const response = await bob.context.request.post(`/api/posts/${postId}/comments`, { data: { content: text } });
    expect(response.status(), text).to.equal(201);
  };

  before(async function () {
    this.timeout(240_000);
    const build = await ensureAppBuilt();
    if (build.built) console.log(`      (next build took ${(build.ms / 1000).toFixed(1)} s)`);
    await seedDemoData(testDatabaseUrl());
    prisma = createPrismaClient(testDatabaseUrl(), { poolMax: 2 });
    aliceId = (await prisma.user.findUniqueOrThrow({ where: { email: 'alice@example.com' } })).id;
    postId = `e2e-tabs-${randomBytes(6).toString('hex')}`;
    await prisma.post.create({ data: { id: postId, authorId: aliceId, title: 'Shared socket post', content: 'Three tabs, one socket.' } });

    const wsPort = await freePort();
    ws = await startServer({ env: { WS_PORT: String(wsPort), LOG_LEVEL: 'info' } });
    app = await startApp({
      DATABASE_URL: testDatabaseUrl(),
      DATABASE_POOL_MAX: '4',
      NEXTAUTH_SECRET: TEST_NEXTAUTH_SECRET,
      REDIS_URL: testRedisUrl(),
      REDIS_CHANNEL_PREFIX: testRedisPrefix('ws:'),
      WS_PUBLISH_URL: ws.httpUrl,
      WS_PUBLISH_SECRET: TEST_PUBLISH_SECRET,
      WS_PUBLIC_URL: `ws://127.0.0.1:${wsPort}`,
      // No polling during the test: a notifications GET is a reload, counted as such.
      NOTIFICATIONS_POLL_MS: '600000',
    });
    relay = await startRelay({ REDIS_URL: testRedisUrl(), REDIS_CHANNEL_PREFIX: testRedisPrefix('ws:') });
    browser = await launchBrowser();
    const signedIn = await signedInPage(browser, app.url, 'alice@example.com');
    alice = signedIn.context;
    contexts.push(alice);
    // The sign-in page's own socket goes with it; from here on only the tabs below count.
    await signedIn.page.close();
  });

  after(async function () {
    this.timeout(30_000);
    if (Object.keys(measured).length > 0) console.log(`      measured: ${JSON.stringify(measured)}`);
    for (const context of contexts) await context.close().catch(() => {});
    await browser?.close().catch(() => {});
    await app?.stop();
    await relay?.stop();
    await ws?.stop();
    await prisma?.$disconnect();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') {
      console.log(`      app log (tail):\n${app?.log().slice(-3000)}`);
      console.log(`      ws log (tail):\n${ws?.log().slice(-3000)}`);
    }
  });

  it('three tabs of one user: the server counts one connection, and an event reaches all three', async () => {
    await metricReaches(ws, 'ws_connections', 0);
    const acceptedBefore = await metric(ws, 'ws_connections_total');
    for (const name of ['tab-a', 'tab-b', 'tab-c']) {
      const tab = track(await alice.newPage(), name);
      await tab.page.goto(`/posts/${postId}`);
      await live(tab.page);
      tabs.push(tab);
    }
    // All three are live (open, every channel confirmed): the server holds exactly one socket,
    // accepted exactly one since the tabs opened, and only the first tab opened a WebSocket.
    expect(await metric(ws, 'ws_connections')).to.equal(1);
    expect((await metric(ws, 'ws_connections_total')) - acceptedBefore).to.equal(1);
    expect(tabs.map((t) => t.sockets)).to.deep.equal([1, 0, 0]);

    bob = await signedInPage(browser, app.url, 'bob@example.com');
    contexts.push(bob.context);
    await bob.page.goto(`/posts/${postId}`);
    await live(bob.page);
    // Another user, another profile: a connection of its own.
    await metricReaches(ws, 'ws_connections', 2);

    const text = `to every tab ${randomBytes(3).toString('hex')}`;
    const watches = await Promise.all(tabs.map((t) => watchFor(t.page, { kind: 'text', selector: '[data-testid=comment-item]', text })));
    const t0 = Date.now();
    await comment(text);
    for (const [i, watch] of watches.entries()) measured[`commentIn${tabs[i]?.name}Ms`] = (await watch.at(5_000)) - t0;
    for (const tab of tabs) expect(await commentCount(tab.page, text), tab.name).to.equal(1);
  });

  it('the leading tab closes: another takes over, every event published meanwhile arrives once, one connection again', async () => {
    const [leader, ...rest] = tabs;
    if (!leader) throw new Error('no tabs');
    for (const tab of rest) tab.reloads.length = 0;
    const acceptedBefore = await metric(ws, 'ws_connections_total');
    const texts = Array.from({ length: 6 }, (_, i) => `handover ${i} ${randomBytes(3).toString('hex')}`);
    const watches = await Promise.all(
      rest.flatMap((t) => texts.map((text) => watchFor(t.page, { kind: 'text', selector: '[data-testid=comment-item]', text }))),
    );
    const onBob = await Promise.all(texts.map((text) => watchFor(bob.page, { kind: 'text', selector: '[data-testid=comment-item]', text })));

    // The next leader's token request is held, so alice has no socket at all until the test
    // lets it go: what is published meanwhile can only come back from the server's history.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let tokenAsked!: () => void;
    const asked = new Promise<void>((resolve) => (tokenAsked = resolve));
    await alice.route('**/api/realtime/token', async (route) => {
      tokenAsked();
      await released;
      await route.continue();
    });

    // Two comments go in while the leader closes, the rest while no tab of alice's has a socket.
    const closedAt = Date.now();
    const closing = leader.page.close();
    await comment(texts[0]!);
    await comment(texts[1]!);
    await closing;
    // The tests after this one go on with the two tabs left, whatever this one finds.
    tabs = rest;
    await asked;
    await metricReaches(ws, 'ws_connections', 1);
    for (const text of texts.slice(2)) await comment(text);
    // Bob (his own socket) shows them all: they are published and in the post's history.
    for (const watch of onBob) await watch.at(10_000);
    for (const tab of rest) expect(await commentCount(tab.page, texts[5]!), `${tab.name} before the new socket`).to.equal(0);
    release();
    try {
      for (const watch of watches) await watch.at(15_000);
    } finally {
      await alice.unroute('**/api/realtime/token');
    }
    measured.handoverAllEventsMs = Date.now() - closedAt;

    for (const tab of rest) {
      for (const text of texts) expect(await commentCount(tab.page, text), `${tab.name}: ${text}`).to.equal(1);
      expect(await tab.page.locator('[data-testid=comment-count]').first().getAttribute('data-count'), tab.name).to.equal(String(texts.length + 1));
      // Recovered from the server's history, not reloaded: no refetch of the post or the bell.
      expect(tab.reloads, `${tab.name} reloaded state`).to.deep.equal([]);
      await live(tab.page);
    }
    // Exactly one of the remaining tabs opened one socket; alice again holds one, bob his.
    expect(rest.map((t) => t.sockets).sort()).to.deep.equal([0, 1]);
    await metricReaches(ws, 'ws_connections', 2);
    expect((await metric(ws, 'ws_connections_total')) - acceptedBefore).to.equal(1);
  });

  it('bob’s connection carries none of alice’s events', async () => {
    const bobFrames: string[] = [];
    bob.page.on('websocket', (socket) => socket.on('framereceived', ({ payload }) => bobFrames.push(String(payload))));
    // Bob's page reconnects so the listener above sees its socket from the start.
    await bob.page.reload();
    await live(bob.page);
    const bobId = (await prisma.user.findUniqueOrThrow({ where: { email: 'bob@example.com' } })).id;
    const publish = async (channel: string, id: string) => {
      const response = await fetch(`${ws.httpUrl}/publish`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_PUBLISH_SECRET}`, 'content-type': 'application/json' },
        body: JSON.stringify({ channel, type: 'notifications_cleared', data: { unreadCount: 0 }, id }),
      });
      expect(response.status).to.equal(202);
    };
    const aliceMarker = `alice-${randomBytes(6).toString('hex')}`;
    const bobMarker = `bob-${randomBytes(6).toString('hex')}`;
    await publish(`notifications_${aliceId}`, aliceMarker);
    // Positive control on alice's side: every tab's bell shows the clear.
    for (const tab of tabs) await tab.page.waitForSelector('[data-testid=bell-count][data-count="0"]', { timeout: 5_000 });
    await publish(`notifications_${bobId}`, bobMarker);
    const deadline = Date.now() + 5_000;
    while (!bobFrames.some((f) => f.includes(bobMarker))) {
      if (Date.now() > deadline) throw new Error('bob’s own marker never arrived');
      await new Promise((r) => setTimeout(r, 20));
    }
    // Published before bob's marker on the same server: had it been routed to bob, it would be in.
    expect(bobFrames.some((f) => f.includes(aliceMarker))).to.equal(false);
  });

  it('a tab without BroadcastChannel keeps a connection of its own beside the shared one', async () => {
    const page = await alice.newPage();
    await page.addInitScript('delete window.BroadcastChannel');
    const tab = track(page, 'tab-no-broadcastchannel');
    await page.goto(`/posts/${postId}`);
    await live(page);
    expect(tab.sockets).to.equal(1);
    await metricReaches(ws, 'ws_connections', 3);
    const text = `fallback ${randomBytes(3).toString('hex')}`;
    const watches = await Promise.all([tab, ...tabs].map((t) => watchFor(t.page, { kind: 'text', selector: '[data-testid=comment-item]', text })));
    await comment(text);
    for (const watch of watches) await watch.at(5_000);
    await page.close();
    await metricReaches(ws, 'ws_connections', 2);
  });

  it('signing out in one tab ends the shared connection for every tab', async () => {
    const [first, second] = tabs;
    if (!first || !second) throw new Error('two tabs expected');
    await metricReaches(ws, 'ws_connections', 2);
    const acceptedBefore = await metric(ws, 'ws_connections_total');
    await second.page.bringToFront();
    await second.page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await second.page.waitForURL('**/signin', { timeout: 10_000 });
    // The other tab still shows the signed-in page; its shared connection is closed for good.
    await first.page.waitForSelector('[data-testid=connection-status][data-state=closed]', { timeout: 10_000 });
    await metricReaches(ws, 'ws_connections', 1);
    // Nothing reconnected for alice: the next leader's token request was answered 401.
    expect(await metric(ws, 'ws_connections_total')).to.equal(acceptedBefore);
  });

  it('raised no uncaught errors in any page', () => {
    expect(pageErrors).to.deep.equal([]);
  });
});
