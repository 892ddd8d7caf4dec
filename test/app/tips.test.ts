/**
 * Tips (POST /api/tips), against the running app, WebSocket server and outbox relay: the Tip row
 * and the creator's TIP notification arriving live over a real WebSocket (the creator's socket on
 * notifications_{creatorId}, opened with the session cookie), the simulated payment, and every
 * refusal with its status, writing nothing. The negative ("no notification for a refused tip")
 * is proven by a later accepted tip arriving first.
 */
import { expect } from 'chai';
import { channelName } from '../../websocket-server/src/protocol/index.ts';
import type { Frame } from '../../websocket-server/test/support/client.ts';
import { createUser, type Browser, type Json } from './support/auth-flow.ts';
import { AppStack } from './support/app-stack.ts';

const LIVE_MS = 2_000;

const notificationOf = (f: Frame) => (f.type === 'notification' ? (f.data as { notification: Json & { data: Json } }).notification : null);

describe('tips: POST /api/tips', function () {
  this.timeout(30_000);
  let s: AppStack;
  let creator: Awaited<ReturnType<typeof createUser>>;
  let creatorBrowser: Browser;
  let fan: Awaited<ReturnType<typeof createUser>>;
  let fanBrowser: Browser;

  before(async function () {
    this.timeout(300_000);
    s = await AppStack.start({ name: 'tips' });
    creator = await createUser(s.prisma, { name: 'tipped', isCreator: true });
    creatorBrowser = await s.browserOf(creator);
    fan = await createUser(s.prisma, { name: 'generous' });
    fanBrowser = await s.browserOf(fan);
  });
  after(async function () {
    this.timeout(20_000);
    await s?.stop();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(s.failedLogs());
  });

  it('a tip reaches the creator live as a TIP notification, with the Tip row and a simulated payment', async () => {
    const socket = await s.socket(creatorBrowser, channelName.notifications(creator.id));
    const started = performance.now();
    const arrived = socket.next((f) => notificationOf(f)?.type === 'TIP', LIVE_MS);
    const { status, json } = await fanBrowser.call('POST', '/api/tips', { creatorId: creator.id, amountCents: 1234, message: '  thanks for the recipes  ' });
    expect(status).to.equal(201);
    const tip = json.tip as Json;
    expect(tip).to.include({ creatorId: creator.id, amountCents: 1234, message: 'thanks for the recipes' });
    expect(json.payment).to.include({ simulated: true, amountCents: 1234 });

    const notification = notificationOf(await arrived)!;
    console.log(`      tip → notification on the creator's socket: ${(performance.now() - started).toFixed(0)} ms`);
    expect(notification.message).to.equal('generous tipped you $12.34: “thanks for the recipes”');
    expect(notification.data).to.deep.equal({ tipId: tip.id, fromUserId: fan.id, amountCents: 1234 });
    const row = await s.prisma.tip.findUniqueOrThrow({ where: { id: String(tip.id) } });
    expect(row).to.include({ fromUserId: fan.id, creatorId: creator.id, amountCents: 1234, message: 'thanks for the recipes' });
    // The stored notification is the one that was pushed.
    expect((await s.prisma.notification.findUniqueOrThrow({ where: { id: String(notification.id) } })).type).to.equal('TIP');
  });

  it('refuses bad input, yourself and non-creators with 4xx, writes nothing and notifies no one', async () => {
    const notCreator = await createUser(s.prisma, { name: 'plain' });
    const socket = await s.socket(creatorBrowser, channelName.notifications(creator.id));
    const tipsBefore = await s.prisma.tip.count();
    const cases: Array<[string, Browser, unknown, number]> = [
      ['below the minimum', fanBrowser, { creatorId: creator.id, amountCents: 99 }, 422],
      ['above the maximum', fanBrowser, { creatorId: creator.id, amountCents: 100_001 }, 422],
      ['fractional cents', fanBrowser, { creatorId: creator.id, amountCents: 150.5 }, 422],
      ['amount as a string', fanBrowser, { creatorId: creator.id, amountCents: '500' }, 422],
      ['message too long', fanBrowser, { creatorId: creator.id, amountCents: 500, message: 'x'.repeat(281) }, 422],
      ['unknown field', fanBrowser, { creatorId: creator.id, amountCents: 500, currency: 'EUR' }, 422],
      ['no creatorId', fanBrowser, { amountCents: 500 }, 422],
      ['not JSON', fanBrowser, '{nope', 422],
      ['yourself', creatorBrowser, { creatorId: creator.id, amountCents: 500 }, 422],
      ['not a creator', fanBrowser, { creatorId: notCreator.id, amountCents: 500 }, 404],
      ['no such user', fanBrowser, { creatorId: 'no-such-user', amountCents: 500 }, 404],
    ];
    for (const [what, who, body, status] of cases) {
      const answer = await who.call('POST', '/api/tips', body);
      expect([what, answer.status], what).to.deep.equal([what, status]);
      expect(answer.json.message, what).to.be.a('string');
    }
    const signedOut = await fetch(`${s.app.url}/api/tips`, { method: 'POST', body: JSON.stringify({ creatorId: creator.id, amountCents: 500 }) });
    expect(signedOut.status).to.equal(401);
    expect(await s.prisma.tip.count(), 'no Tip row').to.equal(tipsBefore);

    // A tip at the bounds goes through; it is the first TIP this socket sees.
    expect((await fanBrowser.call('POST', '/api/tips', { creatorId: creator.id, amountCents: 100_000, message: 'y'.repeat(280) })).status).to.equal(201);
    const first = notificationOf(await socket.next((f) => notificationOf(f)?.type === 'TIP', LIVE_MS))!;
    expect(first.data.amountCents, 'nothing was pushed for the refused tips').to.equal(100_000);
    expect(socket.pushes(channelName.notifications(creator.id)).filter((f) => notificationOf(f)?.type === 'TIP')).to.have.length(1);
  });
});
