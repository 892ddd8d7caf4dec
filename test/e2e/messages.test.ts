/**
 * Direct messages in a real browser (Debian's Chromium through playwright-core) against the real
 * app, WebSocket server, outbox relay (through the server's POST /publish) and the run's scratch
 * database: the
 * header's unread count, a message arriving in the open thread, and "… is typing" shown and
 * cleared (on typing:false, on the message, and 5 s after the last typing:true).
 */
import bcrypt from 'bcryptjs';
import { expect } from 'chai';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { TestClient } from '../../websocket-server/test/support/client.ts';
import { Fixtures } from '../../websocket-server/test/support/fixtures.ts';
import { startServer, type ServerProcess } from '../../websocket-server/test/support/server-process.ts';
import { mintSessionToken } from '../../websocket-server/test/support/tokens.ts';
import { testDatabaseUrl, TEST_NEXTAUTH_SECRET, TEST_PUBLISH_SECRET } from '../support/env.ts';
import { freePort } from '../support/ports.ts';
import { startRelay, type RelayProcess } from '../app/support/outbox-relay.ts';
import { artifactPath, launchBrowser, signedInPage } from './support/browser.ts';
import { ensureAppBuilt, startApp, type AppProcess } from './support/next-app.ts';

const unreadOf = (page: Page) => page.locator('[data-testid=messages-unread]').getAttribute('data-count').then(Number);
const typingText = (page: Page) => page.locator('[data-testid=typing-indicator]').textContent().then((t) => (t ?? '').trim());

describe('e2e: direct messages and typing in a real browser', function () {
  this.timeout(60_000);

  let fixtures: Fixtures;
  let ws: ServerProcess;
  let relay: RelayProcess;
  let app: AppProcess;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  const pageErrors: string[] = [];
  let creator: { id: string; name: string; email: string };
  let fan: { id: string; name: string; email: string };
  let conversationId: string;
  let creatorSocket: TestClient;

  before(async function () {
    this.timeout(240_000);
    await ensureAppBuilt();
    fixtures = new Fixtures();
    const passwordHash = bcrypt.hashSync('password', 4);
    creator = await fixtures.creator('Creatrix');
    fan = await fixtures.user({ name: 'Fanny' });
    // Signed in through the real form, which lower-cases the e-mail it looks up.
    for (const user of [creator, fan]) {
      user.email = user.email.toLowerCase();
      await fixtures.prisma.user.update({ where: { id: user.id }, data: { passwordHash, email: user.email } });
    }
    await fixtures.subscription(fan.id, creator.id);

    const wsPort = await freePort();
    ws = await startServer({ broker: 'memory', env: { WS_PORT: String(wsPort), LOG_LEVEL: 'info' } });
    const publisher = { REDIS_URL: '', WS_PUBLISH_URL: ws.httpUrl, WS_PUBLISH_SECRET: TEST_PUBLISH_SECRET };
    app = await startApp({
      DATABASE_URL: testDatabaseUrl(),
      DATABASE_POOL_MAX: '4',
      NEXTAUTH_SECRET: TEST_NEXTAUTH_SECRET,
      WS_PUBLIC_URL: `ws://127.0.0.1:${wsPort}`,
      ...publisher,
    });
    relay = await startRelay(publisher);
    browser = await launchBrowser();
    creatorSocket = await TestClient.connect(ws.url, { token: await mintSessionToken(creator.id) });
  });

  after(async function () {
    this.timeout(30_000);
    creatorSocket?.close();
    for (const context of contexts) await context.close().catch(() => {});
    await browser?.close().catch(() => {});
    await app?.stop();
    await relay?.stop();
    await ws?.stop();
    await fixtures?.close();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') {
      console.log(`      app log (tail):\n${app?.log().slice(-3000)}`);
      console.log(`      ws log (tail):\n${ws?.log().slice(-3000)}`);
    }
  });

  const open = async (email: string) => {
    const session = await signedInPage(browser, app.url, email);
    contexts.push(session.context);
    session.page.on('pageerror', (error) => pageErrors.push(`${session.page.url()}: ${error.message}`));
    return session.page;
  };

  it('the header counts an unread message live; opening the thread reads it', async () => {
    const fanPage = await open(fan.email);
    await fanPage.waitForSelector('[data-testid=messages-link][data-channel=subscribed]', { timeout: 15_000 });
    expect(await unreadOf(fanPage)).to.equal(0);
    const creatorPage = await open(creator.email);
    await creatorPage.goto('/messages');
    await creatorPage.selectOption('[data-testid=new-conversation-to]', fan.id);
    await creatorPage.fill('[data-testid=new-conversation] textarea', 'Welcome aboard!');
    await creatorPage.click('[data-testid=new-conversation] button[type=submit]');
    await creatorPage.waitForURL(/\/messages\/[A-Za-z0-9-]+$/, { timeout: 10_000 });
    conversationId = creatorPage.url().split('/').at(-1)!;

    // Live, without a reload: the fan's header goes to 1.
    await fanPage.waitForSelector('[data-testid=messages-unread][data-count="1"]', { timeout: 5_000 });
    expect(await fanPage.locator('[data-testid=messages-unread]').isVisible()).to.equal(true);
    await fanPage.click('[data-testid=messages-link]');
    await fanPage.waitForSelector('[data-testid=conversation][data-unread="1"]');
    await fanPage.click('[data-testid=conversation] a');
    await fanPage.waitForSelector('[data-testid=thread-message]:has-text("Welcome aboard!")');
    await fanPage.waitForSelector('[data-testid=messages-unread][data-count="0"]', { state: 'attached', timeout: 5_000 });
    expect(await fanPage.locator('[data-testid=messages-unread]').isVisible(), 'no badge at 0').to.equal(false);
    expect(await fixtures.prisma.message.count({ where: { conversationId, readAt: null } })).to.equal(0);
  });

  it('shows “… is typing” while the other side types, and clears it on typing:false and on the message', async () => {
    const fanPage = await open(fan.email);
    const creatorPage = await open(creator.email);
    await Promise.all([fanPage.goto(`/messages/${conversationId}`), creatorPage.goto(`/messages/${conversationId}`)]);
    for (const page of [fanPage, creatorPage]) await page.waitForSelector('[data-testid=thread][data-channel=subscribed]', { timeout: 15_000 });
    expect(await typingText(fanPage)).to.equal('');

    // The creator types in the browser: the fan sees it.
    await creatorPage.type('[data-testid=message-input]', 'On my', { delay: 30 });
    await fanPage.waitForSelector('[data-testid=typing-indicator]:has-text("Creatrix is typing")', { timeout: 3_000 });
    // Emptying the field sends typing:false.
    await creatorPage.fill('[data-testid=message-input]', '');
    await fanPage.waitForFunction(() => document.querySelector('[data-testid=typing-indicator]')?.textContent?.trim() === '', undefined, { timeout: 3_000 });

    // Typing again, then the message: it appears and the indicator goes.
    await new Promise((resolve) => setTimeout(resolve, 600)); // past the server's 2-a-second budget
    await creatorPage.fill('[data-testid=message-input]', '');
    await creatorPage.type('[data-testid=message-input]', 'On my way', { delay: 20 });
    await fanPage.waitForSelector('[data-testid=typing-indicator]:has-text("is typing")', { timeout: 3_000 });
    await creatorPage.click('[data-testid=message-send]');
    await fanPage.waitForSelector('[data-testid=thread-message]:has-text("On my way")', { timeout: 5_000 });
    expect(await typingText(fanPage)).to.equal('');
    // And the creator's own page shows the message once.
    await creatorPage.waitForSelector('[data-testid=thread-message]:has-text("On my way")');
    expect(await creatorPage.locator('[data-testid=thread-message]:has-text("On my way")').count()).to.equal(1);
    await fanPage.screenshot({ path: artifactPath('messages-thread.png') });
  });

  it('clears “… is typing” by itself 5 s after the last typing:true', async () => {
    const fanPage = await open(fan.email);
    await fanPage.goto(`/messages/${conversationId}`);
    await fanPage.waitForSelector('[data-testid=thread][data-channel=subscribed]', { timeout: 15_000 });
    // One typing:true and never a false: a client that went away mid-word.
    creatorSocket.sendRaw(JSON.stringify({ type: 'typing', conversationId, typing: true }));
    await fanPage.waitForSelector('[data-testid=typing-indicator]:has-text("Creatrix is typing")', { timeout: 3_000 });
    const shownAt = Date.now();
    await fanPage.waitForFunction(() => document.querySelector('[data-testid=typing-indicator]')?.textContent?.trim() === '', undefined, { timeout: 8_000 });
    const clearedAfter = Date.now() - shownAt;
    expect(clearedAfter).to.be.within(4_000, 6_500);
    expect(pageErrors).to.deep.equal([]);
  });
});
