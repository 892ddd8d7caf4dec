/**
 * Buying a locked post (POST /api/posts/:id/purchase), against the running app, WebSocket server
 * and outbox relay: the simulated payment, the PostPurchase row, the creator's PURCHASE
 * notification arriving live on their socket, the buyer's socket now allowed on the post's
 * channel, idempotency (no second charge, no second notification), every refusal with its
 * status, and nobody else's access changed.
 */
import { expect } from 'chai';
import { channelName } from '../../websocket-server/src/protocol/index.ts';
import type { Frame } from '../../websocket-server/test/support/client.ts';
import { createUser, type Browser, type Json } from './support/auth-flow.ts';
import { AppStack } from './support/app-stack.ts';

const LIVE_MS = 2_000;

const isNotification = (type: string, match: (data: Json) => boolean) => (f: Frame) =>
  f.type === 'notification' && (f.data as { notification: Json }).notification.type === type && match((f.data as { notification: { data: Json } }).notification.data);

describe('purchases: POST /api/posts/:id/purchase', function () {
  this.timeout(30_000);
  let s: AppStack;
  let creator: Awaited<ReturnType<typeof createUser>>;
  let author: Browser;

  before(async function () {
    this.timeout(300_000);
    s = await AppStack.start({ name: 'purchases' });
    creator = await createUser(s.prisma, { name: 'seller', isCreator: true });
    author = await s.browserOf(creator);
  });
  after(async function () {
    this.timeout(20_000);
    await s?.stop();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(s.failedLogs());
  });

  const lockedPost = (priceCents: number | null = 500) =>
    s.prisma.post.create({ data: { authorId: creator.id, title: 'For sale', content: 'The secret recipe', isLocked: true, priceCents } });

  async function buyer() {
    const user = await createUser(s.prisma);
    return { user, browser: await s.browserOf(user) };
  }

  it('buys a locked post: 201 with a simulated payment, the content readable, the channel granted, the creator notified live', async () => {
    const post = await lockedPost(750);
    const { user, browser } = await buyer();
    const creatorSocket = await s.socket(author, channelName.notifications(creator.id));
    const fanSocket = await s.socket(browser);
    expect(await fanSocket.subscribe(channelName.post(post.id)), 'refused before buying').to.include({ type: 'error', code: 'forbidden' });
    expect((await browser.call('GET', `/api/posts/${post.id}`)).json).to.include({ locked: true, content: null });

    const notified = creatorSocket.next(isNotification('PURCHASE', (d) => d.postId === post.id && d.buyerId === user.id), LIVE_MS);
    const { status, json } = await browser.call('POST', `/api/posts/${post.id}/purchase`);
    expect(status).to.equal(201);
    expect(json.created).to.equal(true);
    expect(json.purchase).to.include({ postId: post.id, priceCents: 750 });
    const payment = json.payment as Json;
    expect(payment).to.include({ simulated: true, amountCents: 750, currency: 'USD' });
    expect(String(payment.reference)).to.match(/^sim_[0-9a-f]{24}$/);

    const notification = (await notified).data as { notification: Json };
    expect(notification.notification.message).to.contain('$7.50');
    const rows = await s.prisma.postPurchase.findMany({ where: { postId: post.id } });
    expect(rows.map((r) => [r.userId, r.priceCents])).to.deep.equal([[user.id, 750]]);

    const view = await browser.call('GET', `/api/posts/${post.id}`);
    expect(view.status).to.equal(200);
    expect(view.json).to.include({ locked: false, access: 'buyer', content: 'The secret recipe' });
    // The socket that was refused on this connection is allowed now (refusals are not cached).
    expect((await fanSocket.subscribe(channelName.post(post.id))).type).to.equal('subscribed');
  });

  it('is idempotent: buying again answers 200 with the same purchase, charges nothing and notifies no one', async () => {
    const post = await lockedPost(500);
    const { browser } = await buyer();
    const first = await browser.call('POST', `/api/posts/${post.id}/purchase`);
    expect(first.status).to.equal(201);
    const again = await browser.call('POST', `/api/posts/${post.id}/purchase`);
    expect(again.status).to.equal(200);
    expect(again.json).to.deep.include({ created: false, payment: null });
    expect((again.json.purchase as Json).id).to.equal((first.json.purchase as Json).id);
    // Two at once from a new buyer: one purchase, one charge.
    const { browser: racer } = await buyer();
    const both = await Promise.all([racer.call('POST', `/api/posts/${post.id}/purchase`), racer.call('POST', `/api/posts/${post.id}/purchase`)]);
    expect(both.map((r) => r.status).sort()).to.deep.equal([200, 201]);
    expect(both.filter((r) => r.json.payment !== null)).to.have.length(1);
    expect(await s.prisma.postPurchase.count({ where: { postId: post.id } })).to.equal(2);
    const notifications = await s.prisma.notification.findMany({ where: { userId: creator.id, type: 'PURCHASE' } });
    expect(notifications.filter((n) => (n.data as Json).postId === post.id)).to.have.length(2);
  });

  it('refuses what cannot be bought, each with its status, and writes nothing', async () => {
    const { browser } = await buyer();
    const publicPost = await s.prisma.post.create({ data: { authorId: creator.id, title: 'Free', content: 'for all', isLocked: false, priceCents: 500 } });
    const notForSale = await lockedPost(null);
    const own = await lockedPost(500);
    const subscribed = await lockedPost(500);
    const subscriber = await buyer();
    await s.prisma.subscription.create({
      data: { subscriberId: subscriber.user.id, creatorId: creator.id, tier: 'BASIC', status: 'ACTIVE', expiresAt: new Date(Date.now() + 86_400_000) },
    });
    const cases: Array<[string, Browser, string, number, string]> = [
      ['public', browser, publicPost.id, 422, 'unprocessable'],
      ['not for sale', browser, notForSale.id, 422, 'unprocessable'],
      ['own post', author, own.id, 422, 'unprocessable'],
      ['already readable by subscription', subscriber.browser, subscribed.id, 409, 'conflict'],
      ['unknown post', browser, 'no-such-post', 404, 'not_found'],
      ['malformed id', browser, 'bad%20id!', 422, 'unprocessable'],
    ];
    for (const [what, who, id, status, code] of cases) {
      const answer = await who.call('POST', `/api/posts/${id}/purchase`);
      expect([what, answer.status, answer.json.error], what).to.deep.equal([what, status, code]);
      expect(answer.json.message, what).to.be.a('string');
    }
    const signedOut = await fetch(`${s.app.url}/api/posts/${own.id}/purchase`, { method: 'POST' });
    expect(signedOut.status).to.equal(401);
    expect(await s.prisma.postPurchase.count({ where: { postId: { in: [publicPost.id, notForSale.id, own.id, subscribed.id] } } })).to.equal(0);
  });

  it('changes no one else’s access: another post stays locked for the buyer, the bought one for other users', async () => {
    const bought = await lockedPost(500);
    const other = await lockedPost(500);
    const { browser } = await buyer();
    const { browser: bystander } = await buyer();
    const watching = await s.socket(bystander);
    expect((await browser.call('POST', `/api/posts/${bought.id}/purchase`)).status).to.equal(201);

    expect((await browser.call('GET', `/api/posts/${other.id}`)).json, 'the other post').to.include({ locked: true, content: null });
    expect((await bystander.call('GET', `/api/posts/${bought.id}`)).json, 'another user').to.include({ locked: true, content: null });
    const socket = await s.socket(browser);
    expect((await socket.subscribe(channelName.post(bought.id))).type).to.equal('subscribed');
    expect(await socket.subscribe(channelName.post(other.id))).to.include({ type: 'error', code: 'forbidden' });
    expect(await watching.subscribe(channelName.post(bought.id))).to.include({ type: 'error', code: 'forbidden' });
  });
});
