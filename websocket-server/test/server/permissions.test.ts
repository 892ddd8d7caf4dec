import { expect } from 'chai';
import { TestClient } from '../support/client.ts';
import { Fixtures } from '../support/fixtures.ts';
import { startServer, type ServerProcess } from '../support/server-process.ts';
import { mintSessionToken } from '../support/tokens.ts';

/** The whole permission matrix, asked of the running server over the wire. */
describe('RealtimeServer › channel permissions', () => {
  let server: ServerProcess;
  let fixtures: Fixtures;
  const clients = new Map<string, TestClient>();
  const ids: Record<string, string> = {};

  before(async () => {
    fixtures = new Fixtures();
    server = await startServer();
    const creator = await fixtures.creator('creator');
    const plainUser = await fixtures.user({ name: 'plain' });
    const basicSub = await fixtures.user({ name: 'basic' });
    const vipSub = await fixtures.user({ name: 'vip' });
    const expiredSub = await fixtures.user({ name: 'expired' });
    const cancelledSub = await fixtures.user({ name: 'cancelled' });
    const lifetimeSub = await fixtures.user({ name: 'lifetime' });
    const buyer = await fixtures.user({ name: 'buyer' });
    const publicPost = await fixtures.post(creator.id);
    const basicPost = await fixtures.post(creator.id, { isLocked: true, requiredTier: 'BASIC' });
    const premiumPost = await fixtures.post(creator.id, { isLocked: true, requiredTier: 'PREMIUM', priceCents: 500 });
    await fixtures.subscription(basicSub.id, creator.id, { tier: 'BASIC' });
    await fixtures.subscription(vipSub.id, creator.id, { tier: 'VIP' });
    await fixtures.subscription(expiredSub.id, creator.id, { tier: 'VIP', expiresAt: new Date(Date.now() - 60_000) });
    await fixtures.subscription(cancelledSub.id, creator.id, { tier: 'VIP', status: 'CANCELLED' });
    await fixtures.subscription(lifetimeSub.id, creator.id, { tier: 'PREMIUM', expiresAt: null });
    await fixtures.purchase(buyer.id, premiumPost.id);
    Object.assign(ids, {
      creator: creator.id,
      plainUser: plainUser.id,
      publicPost: publicPost.id,
      basicPost: basicPost.id,
      premiumPost: premiumPost.id,
    });
    const people = { creator, plainUser, basicSub, vipSub, expiredSub, cancelledSub, lifetimeSub, buyer };
    for (const [name, user] of Object.entries(people)) {
      clients.set(name, await TestClient.connect(server.url, { token: await mintSessionToken(user.id) }));
      ids[name] = user.id;
    }
  });
  after(async () => {
    for (const client of clients.values()) client?.close();
    await server?.stop();
    await fixtures?.close();
  });

  const ask = async (who: string, channel: () => string) => {
    const reply = await clients.get(who)!.subscribe(channel());
    return reply.type === 'subscribed' ? 'allowed' : String(reply.code);
  };

  const matrix: Array<[string, string, () => string, string]> = [
    ['a user', 'their own notifications', () => `notifications_${ids.plainUser}`, 'allowed'],
    ['a user', "another user's notifications", () => `notifications_${ids.creator}`, 'forbidden'],
    ['a user', 'their own feed', () => `feed_${ids.plainUser}`, 'allowed'],
    ['a user', "another user's feed", () => `feed_${ids.creator}`, 'forbidden'],
    ['a user', "an existing creator's channel", () => `creator_${ids.creator}`, 'allowed'],
    ['a user', 'the channel of a user who is not a creator', () => `creator_${ids.plainUser}`, 'not_found'],
    ['a user', 'an unknown creator', () => 'creator_doesnotexist123', 'not_found'],
    ['a user', 'a public post', () => `post_${ids.publicPost}`, 'allowed'],
    ['a user', 'an unknown post', () => 'post_doesnotexist123', 'not_found'],
    ['a user', 'an unknown channel kind', () => 'chat_123', 'invalid_channel'],
    ['a user', 'a channel with no id', () => 'post_', 'invalid_channel'],
    ['a user', 'a channel id with forbidden characters', () => 'post_../../x', 'invalid_channel'],
    ['a user', 'a name with no kind separator', () => 'announcements', 'invalid_channel'],
    ['a user', 'the reserved broadcast channel (every socket receives it unasked)', () => 'broadcast', 'reserved_channel'],
    ['a user', 'a locked post', () => `post_${ids.basicPost}`, 'forbidden'],
    ['the author', 'their own locked post', () => `post_${ids.premiumPost}`, 'allowed'],
    ['an active BASIC subscriber', 'a BASIC locked post', () => `post_${ids.basicPost}`, 'allowed'],
    ['an active BASIC subscriber', 'a PREMIUM locked post (tier too low)', () => `post_${ids.premiumPost}`, 'forbidden'],
    ['an active VIP subscriber', 'a PREMIUM locked post (higher tier)', () => `post_${ids.premiumPost}`, 'allowed'],
    ['an expired VIP subscriber', 'a BASIC locked post', () => `post_${ids.basicPost}`, 'forbidden'],
    ['a cancelled VIP subscriber', 'a BASIC locked post', () => `post_${ids.basicPost}`, 'forbidden'],
    ['a PREMIUM subscriber with no expiry', 'a PREMIUM locked post', () => `post_${ids.premiumPost}`, 'allowed'],
    ['a buyer of the post', 'that PREMIUM locked post', () => `post_${ids.premiumPost}`, 'allowed'],
    ['a buyer of one post', 'another locked post of the creator', () => `post_${ids.basicPost}`, 'forbidden'],
  ];
  const whoIs: Record<string, string> = {
    'a user': 'plainUser',
    'the author': 'creator',
    'an active BASIC subscriber': 'basicSub',
    'an active VIP subscriber': 'vipSub',
    'an expired VIP subscriber': 'expiredSub',
    'a cancelled VIP subscriber': 'cancelledSub',
    'a PREMIUM subscriber with no expiry': 'lifetimeSub',
    'a buyer of the post': 'buyer',
    'a buyer of one post': 'buyer',
  };

  for (const [who, what, channel, expected] of matrix) {
    it(`${who} → ${what}: ${expected}`, async () => {
      expect(await ask(whoIs[who]!, channel)).to.equal(expected);
    });
  }

  it('a refusal carries the channel and a message, and the connection stays usable', async () => {
    const client = clients.get('plainUser')!;
    const reply = await client.subscribe(`notifications_${ids.creator}`);
    expect(reply).to.include({ type: 'error', code: 'forbidden', channel: `notifications_${ids.creator}` });
    expect(reply.message).to.be.a('string').and.not.empty;
    expect((await client.request({ type: 'ping' })).type).to.equal('pong');
  });
});
