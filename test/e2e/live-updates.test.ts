/**
 * End to end, in a real browser: Debian's Chromium (playwright-core) against the real Next.js
 * app (`next start` of a build in .next/e2e), the real WebSocket server (child process, Redis
 * broker), real Redis and the run's scratch PostgreSQL database seeded with the demo data.
 *
 * The app writes its events to the outbox and an outbox relay (scripts/outbox-relay.ts)
 * publishes them through Redis (REDIS_URL set), the browser connects cross-origin with a
 * token from /api/realtime/token, and notifications are polled every second while the socket is
 * down (NOTIFICATIONS_POLL_MS=1000), so the polling case runs in seconds.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createPrismaClient, type PrismaClient } from '../../lib/db/prisma-client.ts';
import { seedDemoData } from '../../scripts/db/seed.ts';
import { startServer, type ServerProcess } from '../../websocket-server/test/support/server-process.ts';
import { testDatabaseUrl, testRedisPrefix, testRedisUrl, TEST_NEXTAUTH_SECRET, TEST_PUBLISH_SECRET } from '../support/env.ts';
import { artifactPath, launchBrowser, signedInPage } from './support/browser.ts';
import { ensureAppBuilt, startApp, type AppProcess } from './support/next-app.ts';
import { startRelay, type RelayProcess } from '../app/support/outbox-relay.ts';
import { freePort } from '../support/ports.ts';
import { watchFor, type Condition, type Watch } from './support/watch.ts';

/** The bound: likes, comments and notifications show up in the other browser within 1 s. */
const LIVE_MS = 1_000;
const POLL_MS = 1_000;

const countOf = (page: Page, testId: string) =>
  page.locator(`[data-testid=${testId}]`).first().getAttribute('data-count').then(Number);

/** The socket is open and the page's channel subscriptions are confirmed. */
async function live(page: Page, selectors: string[] = []): Promise<void> {
  await page.waitForSelector('[data-testid=connection-status][data-state=open]', { timeout: 15_000 });
  for (const selector of ['[data-testid=bell-button][data-channel=subscribed]', ...selectors]) {
    await page.waitForSelector(selector, { timeout: 10_000 });
  }
}

/** Marks the document, so a test can prove later that the page was never reloaded. */
async function markDocument(page: Page): Promise<void> {
  await page.evaluate(() => {
    (window as unknown as { __e2eMarker: string }).__e2eMarker = 'no-reload';
  });
}
async function documentMarked(page: Page): Promise<boolean> {
  return page.evaluate(() => (window as unknown as { __e2eMarker?: string }).__e2eMarker === 'no-reload');
}

describe('e2e: live updates in a real browser', function () {
  this.timeout(60_000);

  let prisma: PrismaClient;
  let ws: ServerProcess;
  let wsPort: number;
  let app: AppProcess;
  let relay: RelayProcess;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  const pageErrors: string[] = [];
  const latencies: Record<string, number> = {};
  let postId: string;
  let alice: { context: BrowserContext; page: Page };
  let bob: { context: BrowserContext; page: Page };

  /** Installs one watch per named condition, before the action they time. */
  const watchAll = async (conditions: Record<string, [Page, Condition]>) => {
    const watches: Record<string, Watch> = {};
    for (const [name, [page, condition]] of Object.entries(conditions)) watches[name] = await watchFor(page, condition);
    return watches;
  };
  /** Waits for every watch; records each latency from `t0` and checks it against `limitMs`. */
  const within = async (watches: Record<string, Watch>, t0: number, limitMs = LIVE_MS) => {
    for (const [name, watch] of Object.entries(watches)) {
      latencies[name] = (await watch.at(limitMs + 4_000)) - t0;
    }
    for (const name of Object.keys(watches)) expect(latencies[name], `${name} (ms)`).to.be.below(limitMs);
  };

  const track = <T extends { context: BrowserContext; page: Page }>(session: T): T => {
    contexts.push(session.context);
    session.page.on('pageerror', (error) => pageErrors.push(`${session.page.url()}: ${error.message}`));
    return session;
  };

  before(async function () {
    this.timeout(240_000);
    const build = await ensureAppBuilt();
    if (build.built) console.log(`      (next build into .next/e2e took ${(build.ms / 1000).toFixed(1)} s)`);

    await seedDemoData(testDatabaseUrl());
    prisma = createPrismaClient(testDatabaseUrl(), { poolMax: 2 });
    const aliceRow = await prisma.user.findUniqueOrThrow({ where: { email: 'alice@example.com' } });
    // A post of this run only, so counts start from zero whatever ran before.
    postId = `e2e-${randomBytes(6).toString('hex')}`;
    await prisma.post.create({ data: { id: postId, authorId: aliceRow.id, title: 'Live test post', content: 'Watch the counters move.' } });

    wsPort = await freePort();
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
      NOTIFICATIONS_POLL_MS: String(POLL_MS),
    });
    // The app only writes the outbox; the relay publishes it to the server's Redis and prefix.
    relay = await startRelay({ REDIS_URL: testRedisUrl(), REDIS_CHANNEL_PREFIX: testRedisPrefix('ws:') });
    browser = await launchBrowser();
    alice = track(await signedInPage(browser, app.url, 'alice@example.com'));
    bob = track(await signedInPage(browser, app.url, 'bob@example.com'));
  });

  after(async function () {
    this.timeout(30_000);
    if (Object.keys(latencies).length > 0) console.log(`      observed latencies (ms): ${JSON.stringify(latencies)}`);
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
      console.log(`      relay log (tail):\n${relay?.log().slice(-3000)}`);
    }
  });

  it('bob likes and comments on alice’s post: the bell and both post pages update within a second, without reload', async () => {
    await Promise.all([alice.page.goto(`/posts/${postId}`), bob.page.goto(`/posts/${postId}`)]);
    await Promise.all([alice.page, bob.page].map((p) => live(p, ['[data-testid=post][data-channel=subscribed]'])));
    await Promise.all([markDocument(alice.page), markDocument(bob.page)]);
    const bellBefore = await countOf(alice.page, 'bell-count');
    expect(await countOf(alice.page, 'like-count')).to.equal(0);

    // Like: both pages' counts and alice's bell.
    let watches = await watchAll({
      likeOnAlicePage: [alice.page, { kind: 'count', testId: 'like-count', value: 1 }],
      likeOnBobPage: [bob.page, { kind: 'count', testId: 'like-count', value: 1 }],
      likeOnAliceBell: [alice.page, { kind: 'count', testId: 'bell-count', value: bellBefore + 1 }],
    });
    let t0 = Date.now();
    await bob.page.click('[data-testid=like-button]');
    await within(watches, t0);

    // Comment: both pages' lists and alice's bell.
    const text = `Great shot! ${randomBytes(3).toString('hex')}`;
    await bob.page.fill('[data-testid=comment-input]', text);
    watches = await watchAll({
      commentOnAlicePage: [alice.page, { kind: 'text', selector: '[data-testid=comment-item]', text }],
      commentOnBobPage: [bob.page, { kind: 'text', selector: '[data-testid=comment-item]', text }],
      commentOnAliceBell: [alice.page, { kind: 'count', testId: 'bell-count', value: bellBefore + 2 }],
    });
    t0 = Date.now();
    await bob.page.click('[data-testid=comment-submit]');
    await within(watches, t0);
    expect(await countOf(alice.page, 'comment-count')).to.equal(1);

    // The dropdown lists both, newest first.
    await alice.page.click('[data-testid=bell-button]');
    const items = alice.page.locator('[data-testid=bell-item]');
    expect(await items.nth(0).textContent()).to.include('Bob commented on "Live test post"');
    expect(await items.nth(1).textContent()).to.include('Bob liked "Live test post"');
    await alice.page.screenshot({ path: artifactPath('bell.png') });
    await alice.page.keyboard.press('Escape');
    await alice.page.screenshot({ path: artifactPath('post-page-live.png'), fullPage: true });

    expect(await documentMarked(alice.page), 'alice’s page was reloaded').to.equal(true);
    expect(await documentMarked(bob.page), 'bob’s page was reloaded').to.equal(true);
  });

  it('mark as read, mark all read and clear all reach the user’s other tab', async () => {
    const otherTab = await alice.context.newPage();
    otherTab.on('pageerror', (error) => pageErrors.push(`other tab: ${error.message}`));
    await otherTab.goto('/');
    await Promise.all([live(alice.page), live(otherTab)]);
    const unread = await countOf(alice.page, 'bell-count');
    expect(unread).to.be.greaterThan(1);
    expect(await countOf(otherTab, 'bell-count')).to.equal(unread);

    // The acting tab in front: Chromium throttles animation frames in background tabs, and
    // Playwright's click waits for them.
    await alice.page.bringToFront();
    await alice.page.click('[data-testid=bell-button]');
    let watches = await watchAll({ markReadOtherTab: [otherTab, { kind: 'count', testId: 'bell-count', value: unread - 1 }] });
    let t0 = Date.now();
    await alice.page.locator('[data-testid=mark-read]').first().click();
    await within(watches, t0);

    watches = await watchAll({ markAllReadOtherTab: [otherTab, { kind: 'count', testId: 'bell-count', value: 0 }] });
    t0 = Date.now();
    await alice.page.click('[data-testid=mark-all-read]');
    await within(watches, t0);

    await otherTab.bringToFront();
    await otherTab.click('[data-testid=bell-button]');
    expect(await otherTab.locator('[data-testid=bell-item]').count()).to.be.greaterThan(0);
    await alice.page.bringToFront();
    watches = await watchAll({ clearOtherTab: [otherTab, { kind: 'none', selector: '[data-testid=bell-item]' }] });
    t0 = Date.now();
    await alice.page.click('[data-testid=clear-all]');
    await within(watches, t0);
    await alice.page.keyboard.press('Escape');
    await otherTab.close();
  });

  it('a new post appears at once in a subscriber’s feed', async () => {
    await bob.page.goto('/');
    await live(bob.page, ['[data-testid=post-list][data-channel=subscribed]']);
    const title = `Fresh post ${randomBytes(3).toString('hex')}`;
    const watches = await watchAll({ newPostInFeed: [bob.page, { kind: 'text', selector: '[data-testid=post-card]', text: title }] });
    const t0 = Date.now();
    const response = await alice.context.request.post('/api/posts', { data: { title, content: 'Out now.' } });
    expect(response.status()).to.equal(201);
    await within(watches, t0);
  });

  it('carol cannot receive the locked post’s events, and the page shows it is locked', async () => {
    const carol = track(await signedInPage(browser, app.url, 'carol@example.com'));
    const lockedId = 'demo-post-alice-basic';
    const carolFrames: string[] = [];
    carol.page.on('websocket', (socket) => socket.on('framereceived', ({ payload }) => carolFrames.push(String(payload))));

    await carol.page.goto(`/posts/${lockedId}`);
    await live(carol.page);
    await carol.page.waitForSelector('[data-testid=locked-notice]');
    expect(await carol.page.locator('[data-testid=post-content]').count()).to.equal(0);
    expect(await carol.page.textContent('body')).not.to.include('Subscribers (BASIC and up) or buyers can read this.');

    // Even asking the server directly, with her own realtime token, is refused.
    const reply = await carol.page.evaluate(async (channel) => {
      const { url, token } = (await (await fetch('/api/realtime/token')).json()) as { url: string; token: string };
      return new Promise<Record<string, unknown>>((resolve) => {
        const socket = new WebSocket(`${url}?token=${encodeURIComponent(token)}`);
        const timer = setTimeout(() => resolve({ type: 'timeout' }), 5_000);
        socket.onmessage = (event) => {
          const frame = JSON.parse(String(event.data)) as Record<string, unknown>;
          if (frame.type === 'connected') socket.send(JSON.stringify({ type: 'subscribe', channel, id: 1 }));
          else if (frame.id === 1) {
            clearTimeout(timer);
            socket.close();
            resolve(frame);
          }
        };
      });
    }, `post_${lockedId}`);
    expect(reply).to.include({ type: 'error', code: 'forbidden' });

    // Bob (subscribed) comments on it live; carol's page gets nothing and stays locked.
    await bob.page.goto(`/posts/${lockedId}`);
    await live(bob.page, ['[data-testid=post][data-channel=subscribed]']);
    const secret = `for subscribers only ${randomBytes(3).toString('hex')}`;
    const watches = await watchAll({ lockedCommentOnBobPage: [bob.page, { kind: 'text', selector: '[data-testid=comment-item]', text: secret }] });
    const t0 = Date.now();
    expect((await bob.context.request.post(`/api/posts/${lockedId}/comments`, { data: { content: secret } })).status()).to.equal(201);
    await within(watches, t0);
    // Proof point: a marker on carol's own notifications channel, published only now, through
    // the same Redis and server. The server delivers its broker's events in order and a socket's
    // frames arrive in order, so once the marker is in carol's frames, anything of the comment's
    // that was going to reach her would be there before it.
    const carolId = (await prisma.user.findUniqueOrThrow({ where: { email: 'carol@example.com' } })).id;
    const marker = `e2e-marker-${randomBytes(6).toString('hex')}`;
    const published = await fetch(`${ws.httpUrl}/publish`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_PUBLISH_SECRET}`, 'content-type': 'application/json' },
      body: JSON.stringify({ channel: `notifications_${carolId}`, type: 'notifications_cleared', data: { unreadCount: 0 }, id: marker }),
    });
    expect(published.status).to.equal(202);
    const markerDeadline = Date.now() + 5_000;
    while (!carolFrames.some((f) => f.includes(marker))) {
      if (Date.now() > markerDeadline) throw new Error(`the marker never reached carol; her frames: ${carolFrames.join('\n').slice(-2000)}`);
      await carol.page.waitForTimeout(20);
    }
    expect(carolFrames.filter((f) => f.includes(`post_${lockedId}`) && !f.includes('"error"'))).to.deep.equal([]);
    expect(carolFrames.some((f) => f.includes(secret))).to.equal(false);
    expect(await carol.page.textContent('body')).not.to.include(secret);
    await carol.context.close();
  });

  it('the WebSocket server stops and starts again: the page reconnects by itself and the next event arrives', async function () {
    this.timeout(90_000);
    await alice.page.goto(`/posts/${postId}`);
    await live(alice.page, ['[data-testid=post][data-channel=subscribed]']);
    await markDocument(alice.page);

    await ws.stop();
    await alice.page.waitForSelector('[data-testid=connection-status]:not([data-state=open])', { timeout: 5_000 });
    const restartedAt = Date.now();
    ws = await startServer({ env: { WS_PORT: String(wsPort), LOG_LEVEL: 'info' } });
    await live(alice.page, ['[data-testid=post][data-channel=subscribed]']);
    latencies.reconnectAfterRestart = Date.now() - restartedAt;

    const text = `Back online ${randomBytes(3).toString('hex')}`;
    const watches = await watchAll({ commentAfterReconnect: [alice.page, { kind: 'text', selector: '[data-testid=comment-item]', text }] });
    const t0 = Date.now();
    expect((await bob.context.request.post(`/api/posts/${postId}/comments`, { data: { content: text } })).status()).to.equal(201);
    await within(watches, t0);
    expect(await documentMarked(alice.page), 'the page was reloaded').to.equal(true);
  });

  it('with the WebSocket server down, notifications still arrive by polling', async function () {
    this.timeout(60_000);
    await alice.page.goto('/');
    await live(alice.page);
    await ws.stop();
    await alice.page.waitForSelector('[data-testid=bell-button][data-mode=polling]', { timeout: 5_000 });
    const before = await countOf(alice.page, 'bell-count');

    const watches = await watchAll({ notificationByPolling: [alice.page, { kind: 'count', testId: 'bell-count', value: before + 1 }] });
    const t0 = Date.now();
    const response = await bob.context.request.post(`/api/posts/${postId}/comments`, { data: { content: 'Sent while the socket is down' } });
    expect(response.status()).to.equal(201);
    // One poll interval, plus the request itself.
    await within(watches, t0, POLL_MS + 1_000);
    expect(await alice.page.getAttribute('[data-testid=connection-status]', 'data-state')).not.to.equal('open');
  });

  it('raised no uncaught errors in any page', () => {
    expect(pageErrors).to.deep.equal([]);
  });
});
