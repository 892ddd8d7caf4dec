/**
 * End to end, in a real browser (Debian's Chromium through playwright-core) against the real
 * app, WebSocket server (Redis broker) and outbox relay: a user on a locked post's open page
 * clicks "Buy" (the simulated payment) and the content appears without a reload, with the post's
 * channel subscribed; a subscriber reading a locked post in one tab cancels on the creator page
 * in another, and the first tab locks again live, without a reload; a purchase or a subscription
 * made in one tab unlocks the same locked post open in another (`access_granted` on the user's
 * notifications channel), without a reload.
 */
import { expect } from 'chai';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { freePort } from '../support/ports.ts';
import { createUser, PASSWORD } from '../app/support/auth-flow.ts';
import { AppStack } from '../app/support/app-stack.ts';
import { artifactPath, launchBrowser, signedInPage } from './support/browser.ts';

const LIVE_MS = 5_000;

async function markDocument(page: Page): Promise<void> {
  await page.evaluate(() => {
    (window as unknown as { __e2eMarker: string }).__e2eMarker = 'no-reload';
  });
}
async function documentMarked(page: Page): Promise<boolean> {
  return page.evaluate(() => (window as unknown as { __e2eMarker?: string }).__e2eMarker === 'no-reload');
}

describe('e2e: buying a post and cancelling a subscription, live in the browser', function () {
  this.timeout(60_000);
  let s: AppStack;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  const pageErrors: string[] = [];
  let creator: Awaited<ReturnType<typeof createUser>>;

  const session = async (email: string) => {
    const signedIn = await signedInPage(browser, s.app.url, email, PASSWORD);
    contexts.push(signedIn.context);
    signedIn.page.on('pageerror', (error) => pageErrors.push(error.message));
    return signedIn;
  };

  before(async function () {
    this.timeout(300_000);
    const wsPort = await freePort();
    s = await AppStack.start({ name: 'e2e-purchase', wsEnv: { WS_PORT: String(wsPort) }, appEnv: { WS_PUBLIC_URL: `ws://127.0.0.1:${wsPort}` } });
    browser = await launchBrowser();
    creator = await createUser(s.prisma, { name: 'Chef', isCreator: true });
  });
  after(async function () {
    this.timeout(30_000);
    for (const context of contexts) await context.close().catch(() => {});
    await browser?.close().catch(() => {});
    await s?.stop();
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      console.log(s.failedLogs());
      for (const [i, context] of contexts.entries()) {
        for (const [j, page] of context.pages().entries()) await page.screenshot({ path: artifactPath(`purchase-${i}-${j}.png`) }).catch(() => {});
      }
    }
    expect(pageErrors, 'no errors in the pages').to.deep.equal([]);
  });

  it('Buy on a locked post’s open page: the content appears without a reload, and the post’s channel is subscribed', async () => {
    const post = await s.prisma.post.create({
      data: { authorId: creator.id, title: 'The secret sauce', content: 'Two spoons of patience.', isLocked: true, priceCents: 500 },
    });
    const buyer = await createUser(s.prisma, { name: 'Buyer' });
    const { page } = await session(buyer.email);
    await page.goto(`/posts/${post.id}`);
    await page.waitForSelector('[data-testid=post][data-locked=true]');
    await page.waitForSelector('[data-testid=connection-status][data-state=open]', { timeout: 15_000 });
    expect(await page.textContent('[data-testid=buy-button]')).to.equal('Buy for $5.00');
    expect(await page.textContent('[data-testid=simulated-payment-notice]')).to.match(/simulated/i);
    expect(await page.locator('[data-testid=post-content]').count(), 'no content before buying').to.equal(0);
    await markDocument(page);

    const started = Date.now();
    await page.click('[data-testid=buy-button]');
    await page.waitForSelector('[data-testid=post][data-locked=false] [data-testid=post-content]', { timeout: LIVE_MS });
    const shownMs = Date.now() - started;
    await page.waitForSelector('[data-testid=post][data-channel=subscribed]', { timeout: LIVE_MS });
    const subscribedMs = Date.now() - started;
    console.log(`      click Buy → content shown ${shownMs} ms, post channel subscribed ${subscribedMs} ms`);
    expect(await page.textContent('[data-testid=post-content]')).to.equal('Two spoons of patience.');
    expect(await page.textContent('[data-testid=post]')).to.contain('purchased');
    expect(await documentMarked(page), 'the page was not reloaded').to.equal(true);
    expect(await s.prisma.postPurchase.count({ where: { postId: post.id, userId: buyer.id } })).to.equal(1);
  });

  it('Buy in one tab: the same locked post open in another tab of the buyer unlocks without a reload', async () => {
    const post = await s.prisma.post.create({
      data: { authorId: creator.id, title: 'Two-tab recipe', content: 'Salt, then wait.', isLocked: true, priceCents: 300 },
    });
    const buyer = await createUser(s.prisma, { name: 'TwoTabBuyer' });
    const { context, page: first } = await session(buyer.email);
    await first.goto(`/posts/${post.id}`);
    await first.waitForSelector('[data-testid=post][data-locked=true]');
    const second = await context.newPage();
    second.on('pageerror', (error) => pageErrors.push(error.message));
    await second.goto(`/posts/${post.id}`);
    await second.waitForSelector('[data-testid=post][data-locked=true]');
    await second.waitForSelector('[data-testid=connection-status][data-state=open]', { timeout: 15_000 });
    await markDocument(second);

    const started = Date.now();
    await first.click('[data-testid=buy-button]');
    await first.waitForSelector('[data-testid=post][data-locked=false] [data-testid=post-content]', { timeout: LIVE_MS });
    await second.waitForSelector('[data-testid=post][data-locked=false] [data-testid=post-content]', { timeout: LIVE_MS });
    console.log(`      click Buy (first tab) → content shown in the second tab ${Date.now() - started} ms`);
    expect(await second.textContent('[data-testid=post-content]')).to.equal('Salt, then wait.');
    expect(await documentMarked(second), 'the second tab was not reloaded').to.equal(true);
  });

  it('Subscribe on the creator page: a locked post of that creator open in another tab unlocks without a reload', async () => {
    const post = await s.prisma.post.create({ data: { authorId: creator.id, title: 'For members', content: 'Welcome in.', isLocked: true } });
    const reader = await createUser(s.prisma, { name: 'Reader' });
    const { context, page: postPage } = await session(reader.email);
    await postPage.goto(`/posts/${post.id}`);
    await postPage.waitForSelector('[data-testid=post][data-locked=true]');
    await postPage.waitForSelector('[data-testid=connection-status][data-state=open]', { timeout: 15_000 });
    await markDocument(postPage);

    const creatorPage = await context.newPage();
    creatorPage.on('pageerror', (error) => pageErrors.push(error.message));
    await creatorPage.goto(`/creators/${creator.id}`);
    const started = Date.now();
    await creatorPage.click('[data-testid=subscribe-button]');
    await postPage.waitForSelector('[data-testid=post][data-locked=false] [data-testid=post-content]', { timeout: LIVE_MS });
    console.log(`      click Subscribe (other tab) → post page unlocked ${Date.now() - started} ms`);
    expect(await postPage.textContent('[data-testid=post-content]')).to.equal('Welcome in.');
    expect(await documentMarked(postPage), 'the post page was not reloaded').to.equal(true);
  });

  it('Cancel on the creator page: an open locked post page of the subscriber locks again live, without a reload', async () => {
    const post = await s.prisma.post.create({ data: { authorId: creator.id, title: 'Members only', content: 'For subscribers.', isLocked: true } });
    const fan = await createUser(s.prisma, { name: 'Fan' });
    await s.prisma.subscription.create({
      data: { subscriberId: fan.id, creatorId: creator.id, tier: 'BASIC', status: 'ACTIVE', expiresAt: new Date(Date.now() + 30 * 86_400_000) },
    });
    const { context, page: postPage } = await session(fan.email);
    await postPage.goto(`/posts/${post.id}`);
    await postPage.waitForSelector('[data-testid=post][data-locked=false][data-channel=subscribed]', { timeout: 15_000 });
    await markDocument(postPage);

    const creatorPage = await context.newPage();
    creatorPage.on('pageerror', (error) => pageErrors.push(error.message));
    await creatorPage.goto(`/creators/${creator.id}`);
    await creatorPage.waitForSelector('[data-testid=cancel-subscription]');
    const started = Date.now();
    await creatorPage.click('[data-testid=cancel-subscription]');
    await postPage.waitForSelector('[data-testid=post][data-locked=true]', { timeout: LIVE_MS });
    console.log(`      click Cancel (other tab) → post page locked ${Date.now() - started} ms`);
    expect(await postPage.locator('[data-testid=post-content]').count(), 'the content is gone').to.equal(0);
    expect(await documentMarked(postPage), 'the post page was not reloaded').to.equal(true);
    await creatorPage.waitForSelector('[data-testid=subscribe-button]');
    expect((await s.prisma.subscription.findFirstOrThrow({ where: { subscriberId: fan.id, creatorId: creator.id } })).status).to.equal('CANCELLED');
  });
});
