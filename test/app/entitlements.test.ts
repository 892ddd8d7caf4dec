/**
 * Entitlement announcements: every change of who may read what (subscribing, changing tier,
 * cancelling, locking, unlocking, re-tiering and deleting a post) sends the right
 * `entitlement_changed` control message after it committed, and nothing else does. Against the
 * real app publishing through the run's Redis, read back with a subscriber on `<prefix>$control`.
 */
import { expect } from 'chai';
import { createPrismaClient, type PrismaClient } from '../../lib/db/prisma-client.ts';
import type { ControlMessage, EntitlementCause } from '../../websocket-server/src/protocol/index.ts';
import { mintSessionToken } from '../../websocket-server/test/support/tokens.ts';
import { testDatabaseUrl, testRedisPrefix, testRedisUrl, TEST_NEXTAUTH_SECRET } from '../support/env.ts';
import { ensureAppBuilt, startApp, type AppProcess } from '../e2e/support/next-app.ts';
import { Browser, ControlRecorder, createUser } from './support/auth-flow.ts';
import { startRelay, type RelayProcess } from './support/outbox-relay.ts';

type Entitlement = Extract<ControlMessage, { type: 'entitlement_changed' }>;

describe('entitlement announcements (app side)', function () {
  this.timeout(30_000);

  let prisma: PrismaClient;
  let app: AppProcess;
  let relay: RelayProcess;
  let control: ControlRecorder;
  const ids = { creator: '', fan: '', other: '' };
  const as: Record<keyof typeof ids, Browser> = {} as Record<keyof typeof ids, Browser>;

  /** The next entitlement_changed message from `mark` on, of `cause`, naming `subject`. */
  async function announced(mark: number, cause: EntitlementCause, subject: Record<string, string>): Promise<Entitlement> {
    const message = await control.next(
      (m) => control.messages.indexOf(m) >= mark && m.type === 'entitlement_changed' && m.cause === cause,
    );
    expect((message as Entitlement).subjects).to.deep.equal([subject]);
    return message as Entitlement;
  }

  /** Nothing was announced from `mark` on: a later request's message arrives with nothing before it. */
  async function nothingAnnounced(mark: number): Promise<void> {
    const user = await createUser(prisma, { name: 'marker' });
    const response = await Browser.withCookie(app.url, await mintSessionToken(user.id)).call('POST', '/api/account/sign-out-everywhere');
    expect(response.status).to.equal(200);
    const between = await control.between(mark, (m) => m.type === 'user_sessions_revoked' && m.userId === user.id);
    expect(between).to.deep.equal([]);
  }

  before(async function () {
    this.timeout(300_000);
    await ensureAppBuilt();
    prisma = createPrismaClient(testDatabaseUrl(), { poolMax: 2 });
    const prefix = testRedisPrefix('entitlements:');
    control = await ControlRecorder.start(testRedisUrl(), prefix);
    app = await startApp({
      DATABASE_URL: testDatabaseUrl(),
      DATABASE_POOL_MAX: '3',
      NEXTAUTH_SECRET: TEST_NEXTAUTH_SECRET,
      REDIS_URL: testRedisUrl(),
      REDIS_CHANNEL_PREFIX: prefix,
    });
    // The app only writes the outbox; the relay publishes its control messages to this prefix.
    relay = await startRelay({ REDIS_URL: testRedisUrl(), REDIS_CHANNEL_PREFIX: prefix });
    const users = {
      creator: await createUser(prisma, { name: 'creator', isCreator: true }),
      fan: await createUser(prisma, { name: 'fan' }),
      other: await createUser(prisma, { name: 'other', isCreator: true }),
    };
    for (const key of Object.keys(users) as (keyof typeof ids)[]) {
      ids[key] = users[key].id;
      as[key] = new Browser(app.url);
      await as[key].signIn(users[key].email);
    }
  });

  after(async function () {
    this.timeout(20_000);
    await app?.stop();
    await relay?.stop();
    await control?.stop();
    await prisma?.$disconnect();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') {
      console.log(`      app log (tail):\n${app?.log().slice(-3000)}`);
      console.log(`      relay log (tail):\n${relay?.log().slice(-3000)}`);
    }
  });

  describe('subscriptions', () => {
    const subject = () => ({ kind: 'subscription', subscriberId: ids.fan, creatorId: ids.creator });
    const subscribe = (tier: string) => as.fan.call('POST', `/api/creators/${ids.creator}/subscription`, { tier });

    it('subscribing announces subscription_created, with the commit time', async () => {
      let mark = control.messages.length;
      const before = Date.now();
      expect((await subscribe('BASIC')).status).to.equal(201);
      const message = await announced(mark, 'subscription_created', subject());
      expect(message.at).to.be.within(before, Date.now());

      mark = control.messages.length;
      expect((await subscribe('BASIC')).status, 'the same subscription again').to.equal(200);
      await nothingAnnounced(mark);
    });

    it('changing tier announces subscription_tier_changed', async () => {
      const mark = control.messages.length;
      expect((await subscribe('VIP')).status).to.equal(201);
      await announced(mark, 'subscription_tier_changed', subject());
      const downgrade = control.messages.length;
      expect((await subscribe('BASIC')).status).to.equal(201);
      await announced(downgrade, 'subscription_tier_changed', subject());
    });

    it('cancelling announces subscription_cancelled; renewing after it, subscription_created', async () => {
      let mark = control.messages.length;
      expect((await as.fan.call('DELETE', `/api/creators/${ids.creator}/subscription`)).status).to.equal(200);
      await announced(mark, 'subscription_cancelled', subject());

      mark = control.messages.length;
      expect((await as.fan.call('DELETE', `/api/creators/${ids.creator}/subscription`)).status, 'nothing left to cancel').to.equal(404);
      await nothingAnnounced(mark);

      mark = control.messages.length;
      expect((await subscribe('PREMIUM')).status).to.equal(201);
      await announced(mark, 'subscription_created', subject());
    });
  });

  describe('PATCH /api/posts/:id and DELETE', () => {
    let postId: string;
    const subject = () => ({ kind: 'post', postId });
    const patch = (body: unknown, who: Browser = as.creator, id = postId) => who.call('PATCH', `/api/posts/${id}`, body);

    before(async () => {
      postId = (await prisma.post.create({ data: { authorId: ids.creator, title: 'Changing', content: 'Secret' } })).id;
    });

    it('answers 401, 403, 404 and 422 like the other routes, and changes nothing then', async () => {
      const mark = control.messages.length;
      expect((await new Browser(app.url).call('PATCH', `/api/posts/${postId}`, { isLocked: true })).status).to.equal(401);
      expect((await patch({ isLocked: true }, as.fan)).status, 'not the author').to.equal(403);
      expect((await patch({ isLocked: true }, as.other)).status, 'another creator').to.equal(403);
      expect((await patch({ isLocked: true }, as.creator, 'no-such-post')).status).to.equal(404);
      expect((await patch({ isLocked: true }, as.creator, 'bad%20id')).status).to.equal(422);
      for (const body of [{}, { isLocked: 'yes' }, { requiredTier: 'GOLD' }, { isLocked: true, title: 'x' }, 'not json']) {
        const { status, json } = await patch(body);
        expect(status, JSON.stringify(body)).to.equal(422);
        expect(json.error).to.equal('unprocessable');
      }
      expect(await prisma.post.findUniqueOrThrow({ where: { id: postId }, select: { isLocked: true } })).to.deep.equal({ isLocked: false });
      await nothingAnnounced(mark);
    });

    it('locking announces post_locked; re-tiering a locked post, post_retiered; unlocking, post_unlocked', async () => {
      let mark = control.messages.length;
      const locked = await patch({ isLocked: true, requiredTier: 'PREMIUM' });
      expect(locked.status).to.equal(200);
      expect(locked.json.changed).to.equal('post_locked');
      expect(locked.json.post).to.include({ id: postId, isLocked: true, requiredTier: 'PREMIUM' });
      expect(JSON.stringify(locked.json), 'a summary, without the content').not.to.include('Secret');
      await announced(mark, 'post_locked', subject());

      mark = control.messages.length;
      expect((await patch({ requiredTier: 'VIP' })).json.changed).to.equal('post_retiered');
      await announced(mark, 'post_retiered', subject());

      mark = control.messages.length;
      expect((await patch({ isLocked: true, requiredTier: 'VIP' })).json.changed, 'as it already is').to.equal(null);
      await nothingAnnounced(mark);

      mark = control.messages.length;
      expect((await patch({ isLocked: false })).json.changed).to.equal('post_unlocked');
      await announced(mark, 'post_unlocked', subject());

      mark = control.messages.length;
      const retieredPublic = await patch({ requiredTier: 'BASIC' });
      expect(retieredPublic.json.changed, 'the tier of a public post decides nothing').to.equal(null);
      expect(await prisma.post.findUniqueOrThrow({ where: { id: postId }, select: { requiredTier: true } })).to.deep.equal({ requiredTier: 'BASIC' });
      await nothingAnnounced(mark);
    });

    it('deleting a post announces post_deleted', async () => {
      const mark = control.messages.length;
      expect((await as.creator.call('DELETE', `/api/posts/${postId}`)).status).to.equal(200);
      await announced(mark, 'post_deleted', subject());
      expect((await patch({ isLocked: true })).status, 'a deleted post').to.equal(404);
    });
  });
});
