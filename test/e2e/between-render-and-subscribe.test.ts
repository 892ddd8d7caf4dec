/**
 * End to end, in a real browser: a like and a comment made while the post page is still
 * loading, after the server rendered it and before its socket subscribed, show up. The page
 * renders at the channel's position and subscribes with `since` it (app/posts/[id]/page.tsx,
 * LivePost's initialPosition), so the server replays what was committed in between.
 *
 * The gap is made wide on purpose: the page's GET /api/realtime/token is held by a Playwright
 * route until the test releases it, so the socket cannot open; meanwhile Carol likes and
 * comments through the API, and the outbox relay publishes both. Released, the page must show
 * the like count and the comment, without a reload and without refetching the post (the replay
 * brings them: `recovered: true`). Prints how long after the release they appeared.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import type { Browser, BrowserContext, Page, Route } from 'playwright-core';
import { createPrismaClient, type PrismaClient } from '../../lib/db/prisma-client.ts';
import { seedDemoData } from '../../scripts/db/seed.ts';
import { startServer, type ServerProcess } from '../../websocket-server/test/support/server-process.ts';
import { mintSessionToken } from '../../websocket-server/test/support/tokens.ts';
import { startRelay, type RelayProcess } from '../app/support/outbox-relay.ts';
import { testDatabaseUrl, testRedisPrefix, testRedisUrl, TEST_NEXTAUTH_SECRET, TEST_PUBLISH_SECRET } from '../support/env.ts';
import { freePort } from '../support/ports.ts';
import { artifactPath, launchBrowser, signedInPage } from './support/browser.ts';
import { ensureAppBuilt, startApp, type AppProcess } from './support/next-app.ts';
import { watchFor } from './support/watch.ts';

describe('e2e: a like made between the post page’s render and its subscribe', function () {
  this.timeout(60_000);

  let prisma: PrismaClient | undefined;
  let ws: ServerProcess | undefined;
  let app: AppProcess | undefined;
  let relay: RelayProcess | undefined;
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  let carolCookie: string;
  const pageErrors: string[] = [];

  before(async function () {
    this.timeout(400_000);
    await ensureAppBuilt();
    await seedDemoData(testDatabaseUrl());
    prisma = createPrismaClient(testDatabaseUrl(), { poolMax: 2 });
    const carol = await prisma.user.findUniqueOrThrow({ where: { email: 'carol@example.com' } });
    carolCookie = await mintSessionToken(carol.id, { claims: { name: carol.name, email: carol.email } });
    const prefix = testRedisPrefix(`e2e-gap-${randomBytes(3).toString('hex')}:`);
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
  });

  after(async function () {
    this.timeout(30_000);
    await context?.close().catch(() => {});
    await browser?.close().catch(() => {});
    await app?.stop();
    await relay?.stop();
    await ws?.stop();
    await prisma?.$disconnect();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') {
      console.log(`      page errors: ${JSON.stringify(pageErrors)}`);
      console.log(`      ws log (tail):\n${ws?.log().slice(-2000)}`);
      console.log(`      relay log (tail):\n${relay?.log().slice(-2000)}`);
    }
  });

  async function asCarol(method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
    const response = await fetch(`${app!.url}${path}`, {
      method,
      headers: { cookie: `next-auth.session-token=${carolCookie}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, json: (await response.json().catch(() => ({}))) as Record<string, unknown> };
  }

  it('the like count and the comment appear once the socket subscribes, replayed from the rendered position (no reload, no refetch)', async function () {
    const alice = await prisma!.user.findUniqueOrThrow({ where: { email: 'alice@example.com' } });
    const postId = `gap-${randomBytes(6).toString('hex')}`;
    await prisma!.post.create({ data: { id: postId, authorId: alice.id, title: 'Between render and subscribe', content: 'Public.' } });

    const session = await signedInPage(browser!, app!.url, 'bob@example.com');
    context = session.context;
    const page: Page = session.page;
    page.on('pageerror', (error) => pageErrors.push(error.message));

    // Hold every socket token request of the page until released.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let held = 0;
    await page.route('**/api/realtime/token', async (route: Route) => {
      held++;
      await released;
      await route.continue();
    });
    // Requests that re-read the post (a refetch after recovered:false would be one).
    const postReads: string[] = [];
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (url.pathname === `/api/posts/${postId}`) postReads.push(`${request.method()} ${url.pathname}`);
    });

    await page.goto(`/posts/${postId}`);
    await page.waitForSelector('[data-testid=like-count][data-count="0"]');
    const deadline = Date.now() + 10_000;
    while (held === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(held, 'the page asked for a socket token (held)').to.be.greaterThan(0);
    expect(await page.getAttribute('[data-testid=post]', 'data-channel'), 'not subscribed while the token is held').to.not.equal('subscribed');
    await page.evaluate(() => ((window as unknown as { __marker: string }).__marker = 'no-reload'));

    // Carol acts between the render and the subscribe; the relay publishes both.
    const text = `Made while the page was loading ${randomBytes(3).toString('hex')}`;
    const like = await asCarol('POST', `/api/posts/${postId}/like`);
    const comment = await asCarol('POST', `/api/posts/${postId}/comments`, { content: text });
    expect(like.status, JSON.stringify(like.json)).to.equal(200);
    expect(comment.status, JSON.stringify(comment.json)).to.equal(201);
    const sentBy = Date.now() + 10_000;
    for (;;) {
      const unsent = await prisma!.outboxEvent.count({ where: { channels: { has: `post_${postId}` }, sentAt: null } });
      const all = await prisma!.outboxEvent.count({ where: { channels: { has: `post_${postId}` } } });
      if (all >= 2 && unsent === 0) break;
      if (Date.now() > sentBy) throw new Error('the relay did not publish the like and the comment');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // Still the rendered state: nothing can have reached the page yet.
    expect(await page.getAttribute('[data-testid=like-count]', 'data-count')).to.equal('0');

    const likeShown = await watchFor(page, { kind: 'count', testId: 'like-count', value: 1 });
    const commentShown = await watchFor(page, { kind: 'text', selector: '[data-testid=comment-item]', text });
    const subscribed = await watchFor(page, { kind: 'text', selector: '[data-testid=post][data-channel=subscribed]', text: '' });
    const releasedAt = await page.evaluate(() => Date.now());
    release();
    const likeAt = await likeShown.at(10_000);
    const commentAt = await commentShown.at(10_000);
    const subscribedAt = await subscribed.at(10_000);
    await page.screenshot({ path: artifactPath('post-page-between-render-and-subscribe.png'), fullPage: true });
    process.stdout.write(
      `\n    [e2e] released the socket token → subscribed ${subscribedAt - releasedAt} ms, like count 1 ${likeAt - releasedAt} ms, comment ${commentAt - releasedAt} ms; post re-reads: ${postReads.length}\n`,
    );

    expect(await page.getAttribute('[data-testid=comment-count]', 'data-count')).to.equal('1');
    expect(await page.evaluate(() => (window as unknown as { __marker?: string }).__marker), 'the page was reloaded').to.equal('no-reload');
    expect(postReads, 'the post was refetched (recovered: false) instead of replayed').to.deep.equal([]);
    expect(pageErrors).to.deep.equal([]);
  });
});
