/**
 * Sessions that end when they should, on the app's side: session ids in the session token and
 * the realtime token, sign-out, "sign out everywhere" and account deletion. Against the real app
 * (`next start` of the e2e build) publishing through the run's Redis, with next-auth's real
 * credentials sign-in driven over fetch, and a Redis subscriber on `<prefix>$control` to see
 * exactly which control messages the app sends.
 */
import { expect } from 'chai';
import { decode, encode } from 'next-auth/jwt';
import { createPrismaClient, type PrismaClient } from '../../lib/db/prisma-client.ts';
import { mintSessionToken } from '../../websocket-server/test/support/tokens.ts';
import { testDatabaseUrl, testRedisPrefix, testRedisUrl, TEST_NEXTAUTH_SECRET } from '../support/env.ts';
import { ensureAppBuilt, startApp, type AppProcess } from '../e2e/support/next-app.ts';
import { Browser, ControlRecorder, createUser, type Json } from './support/auth-flow.ts';
import { startRelay, type RelayProcess } from './support/outbox-relay.ts';

const REALTIME_TTL_SECONDS = 30;

describe('sessions: ids, sign-out, sign out everywhere, account deletion (app side)', function () {
  this.timeout(30_000);

  let prisma: PrismaClient;
  let app: AppProcess;
  let relay: RelayProcess;
  let control: ControlRecorder;

  const browser = () => new Browser(app.url);
  const copyOf = (token: string) => Browser.withCookie(app.url, token);

  /** A request that publishes a known message later, so that `control.between` can end. */
  async function marker(): Promise<(m: { type: string; userId?: string }) => boolean> {
    const user = await createUser(prisma, { name: 'marker' });
    const response = await copyOf(await mintSessionToken(user.id)).call('POST', '/api/account/sign-out-everywhere');
    expect(response.status).to.equal(200);
    return (m) => m.type === 'user_sessions_revoked' && m.userId === user.id;
  }

  before(async function () {
    this.timeout(300_000);
    await ensureAppBuilt();
    prisma = createPrismaClient(testDatabaseUrl(), { poolMax: 2 });
    const prefix = testRedisPrefix('sessions:');
    control = await ControlRecorder.start(testRedisUrl(), prefix);
    app = await startApp({
      DATABASE_URL: testDatabaseUrl(),
      DATABASE_POOL_MAX: '3',
      NEXTAUTH_SECRET: TEST_NEXTAUTH_SECRET,
      REDIS_URL: testRedisUrl(),
      REDIS_CHANNEL_PREFIX: prefix,
      REALTIME_TOKEN_TTL_SECONDS: String(REALTIME_TTL_SECONDS),
    });
    // The app only writes the outbox; the relay publishes its control messages to this prefix.
    relay = await startRelay({ REDIS_URL: testRedisUrl(), REDIS_CHANNEL_PREFIX: prefix });
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

  describe('session ids', () => {
    it('a sign-in puts a random sid in the session token; page scripts never see it', async () => {
      const user = await createUser(prisma);
      const [first, second] = [browser(), browser()];
      await first.signIn(user.email);
      await second.signIn(user.email);
      const [a, b] = [await first.session(), await second.session()];
      expect(a.sub).to.equal(user.id);
      expect(a.auth_time, 'the sign-in instant').to.be.within(Number(a.iat) - 1, Number(a.iat));
      expect(a.sid).to.be.a('string').and.match(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(b.sid, 'each sign-in is a session of its own').to.be.a('string').and.not.equal(a.sid);

      const session = await first.call('GET', '/api/auth/session');
      expect((session.json.user as Json).id).to.equal(user.id);
      expect(JSON.stringify(session.json)).not.to.include(String(a.sid));
      // The session read refreshed the cookie; the refreshed one is the same session.
      expect((await first.session()).sid).to.equal(a.sid);
    });

    it('the realtime token carries the sid of the session that asked, and lives REALTIME_TOKEN_TTL_SECONDS', async () => {
      const user = await createUser(prisma);
      const tab = browser();
      await tab.signIn(user.email);
      const { sid } = await tab.session();
      const before = Date.now();
      const { status, json } = await tab.call('GET', '/api/realtime/token');
      expect(status).to.equal(200);
      const token = await decode({ token: String(json.token), secret: TEST_NEXTAUTH_SECRET });
      expect(token).to.include({ sub: user.id, sid, scope: 'realtime', auth_time: (await tab.session()).auth_time });
      expect(Number(token?.exp) - Number(token?.iat)).to.equal(REALTIME_TTL_SECONDS);
      const expiresAt = Number(json.expiresAt);
      expect(expiresAt, 'never later than the token’s exp').to.be.at.most(Number(token?.exp) * 1000);
      expect(expiresAt - before).to.be.within((REALTIME_TTL_SECONDS - 1) * 1000, REALTIME_TTL_SECONDS * 1000);
    });
  });

  describe('sign-out', () => {
    it('records the sid as revoked, announces session_revoked, and refuses the old cookie; the other session lives', async () => {
      const user = await createUser(prisma);
      const [leaving, staying] = [browser(), browser()];
      await leaving.signIn(user.email);
      await staying.signIn(user.email);
      const session = await leaving.session();
      const cookie = leaving.sessionToken!;

      const response = await leaving.signOut();
      expect(response.status).to.equal(200);
      expect(leaving.sessionToken, 'the cookie is cleared').to.equal(undefined);

      const row = await prisma.revokedSession.findUniqueOrThrow({ where: { sessionId: String(session.sid) } });
      expect(row.userId).to.equal(user.id);
      expect(row.expiresAt.getTime(), 'kept at least until the token expires').to.be.at.least(Number(session.exp) * 1000);
      const message = await control.next((m) => m.type === 'session_revoked' && m.sessionId === session.sid);
      expect(message).to.deep.equal({ type: 'session_revoked', userId: user.id, sessionId: session.sid });

      const copy = copyOf(cookie);
      expect((await copy.call('GET', '/api/notifications')).status).to.equal(401);
      expect((await copy.call('GET', '/api/realtime/token')).status).to.equal(401);
      expect((await copy.call('GET', '/api/auth/session')).json).not.to.have.property('user');
      expect((await staying.call('GET', '/api/notifications')).status, 'another session of the same user').to.equal(200);
      expect((await staying.call('GET', '/api/realtime/token')).status).to.equal(200);
    });

    it('signing out a copy of an already signed-out cookie again is harmless', async () => {
      const user = await createUser(prisma);
      const tab = browser();
      await tab.signIn(user.email);
      const cookie = tab.sessionToken!;
      const { sid } = await tab.session();
      await tab.signOut();
      const again = await copyOf(cookie).signOut();
      expect(again.status).to.equal(200);
      expect(await prisma.revokedSession.count({ where: { userId: user.id } })).to.equal(1);
      // Published by the relay after the commit: it may arrive after the responses.
      await control.next((m) => m.type === 'session_revoked' && m.sessionId === sid);
    });

    it('a token without sid (minted before session ids) counts while its user exists; its sign-out revokes nothing on its own', async () => {
      const user = await createUser(prisma);
      const old = copyOf(await mintSessionToken(user.id, { claims: { name: user.name, email: user.email } }));
      expect((await old.call('GET', '/api/notifications')).status).to.equal(200);
      const mark = control.messages.length;
      expect((await old.signOut()).status).to.equal(200);
      const between = await control.between(mark, await marker());
      expect(between.filter((m) => 'userId' in m && m.userId === user.id)).to.deep.equal([]);
      expect(await prisma.revokedSession.count({ where: { userId: user.id } })).to.equal(0);
      expect(app.log()).to.include('sign-out of a session without a sid');
    });

    it('refuses the token of a user that no longer exists', async () => {
      const user = await createUser(prisma);
      const cookie = await mintSessionToken(user.id);
      expect((await copyOf(cookie).call('GET', '/api/notifications')).status).to.equal(200);
      await prisma.user.delete({ where: { id: user.id } });
      expect((await copyOf(cookie).call('GET', '/api/notifications')).status).to.equal(401);
      expect((await copyOf(cookie).call('GET', '/api/realtime/token')).status).to.equal(401);
    });
  });

  describe('POST /api/account/sign-out-everywhere', () => {
    it('answers 401 without a session', async () => {
      const { status, json } = await browser().call('POST', '/api/account/sign-out-everywhere');
      expect(status).to.equal(401);
      expect(json.error).to.equal('unauthorized');
    });

    it('ends every session of the user (this one included), stores and announces the cutoff', async () => {
      const user = await createUser(prisma);
      const [here, elsewhere] = [browser(), browser()];
      await here.signIn(user.email);
      await elsewhere.signIn(user.email);
      const old = await mintSessionToken(user.id);
      const cookies = [here.sessionToken!, elsewhere.sessionToken!, old];
      const other = await createUser(prisma);
      const bystander = browser();
      await bystander.signIn(other.email);

      const { status, json, response } = await here.call('POST', '/api/account/sign-out-everywhere');
      expect(status).to.equal(200);
      expect(json.signedOut).to.equal(true);
      expect(response.headers.getSetCookie().some((c) => /^next-auth\.session-token=;.*Max-Age=0/i.test(c))).to.equal(true);
      expect(here.sessionToken, 'this browser’s cookie is cleared').to.equal(undefined);

      const stored = await prisma.user.findUniqueOrThrow({ where: { id: user.id }, select: { sessionsValidAfter: true } });
      expect(stored.sessionsValidAfter?.toISOString()).to.equal(json.notBefore);
      const message = await control.next((m) => m.type === 'user_sessions_revoked' && m.userId === user.id);
      expect(message).to.deep.equal({ type: 'user_sessions_revoked', userId: user.id, notBefore: stored.sessionsValidAfter!.getTime() });

      for (const [i, cookie] of cookies.entries()) {
        expect((await copyOf(cookie).call('GET', '/api/notifications')).status, `cookie ${i}`).to.equal(401);
        expect((await copyOf(cookie).call('GET', '/api/realtime/token')).status, `cookie ${i}`).to.equal(401);
      }
      expect((await bystander.call('GET', '/api/notifications')).status, 'another user').to.equal(200);

      // Signing out a session that is already refused still works (the header's button).
      expect((await elsewhere.signOut()).status).to.equal(200);
      expect(elsewhere.sessionToken).to.equal(undefined);

      // A sign-in after the cutoff's second counts (iat has whole seconds; the cutoff's own
      // second is refused, see issuedBeforeCutoff).
      const wait = Math.ceil((stored.sessionsValidAfter!.getTime() + 1) / 1000) * 1000 - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const again = browser();
      await again.signIn(user.email);
      expect((await again.call('GET', '/api/notifications')).status).to.equal(200);
    });

    it('a cookie refresh that raced the cutoff (iat after it, auth_time before) is refused too', async () => {
      const user = await createUser(prisma);
      const tab = browser();
      await tab.signIn(user.email);
      const payload = await tab.session();
      const { json } = await tab.call('POST', '/api/account/sign-out-everywhere');
      const cutoff = Date.parse(String(json.notBefore));
      await new Promise((r) => setTimeout(r, Math.ceil((cutoff + 1) / 1000) * 1000 - Date.now()));
      // What GET /api/auth/session writes when it read the user just before the cutoff: the same
      // claims, re-encoded now (encode stamps a fresh iat).
      const raced = await encode({ token: payload, secret: TEST_NEXTAUTH_SECRET });
      const racedClaims = await decode({ token: raced, secret: TEST_NEXTAUTH_SECRET });
      expect(Number(racedClaims?.iat) * 1000).to.be.above(cutoff);
      expect((await copyOf(raced).call('GET', '/api/notifications')).status).to.equal(401);
      // Without auth_time the same fresh iat would pass: the claim is what refuses it.
      const { auth_time: _dropped, ...withoutAuthTime } = payload;
      const fresh = await encode({ token: withoutAuthTime, secret: TEST_NEXTAUTH_SECRET });
      expect((await copyOf(fresh).call('GET', '/api/notifications')).status).to.equal(200);
    });
  });

  describe('DELETE /api/account', () => {
    it('answers 401 without a session', async () => {
      expect((await browser().call('DELETE', '/api/account')).status).to.equal(401);
    });

    it('deletes the user and what is theirs, announces user_deleted and the loss of their posts, and signs out', async () => {
      const creator = await createUser(prisma, { name: 'leaving', isCreator: true });
      const fan = await createUser(prisma);
      const posts = await Promise.all(
        [true, false].map((isLocked) => prisma.post.create({ data: { authorId: creator.id, title: 'Goes away', content: 'c', isLocked } })),
      );
      await prisma.subscription.create({ data: { subscriberId: fan.id, creatorId: creator.id, tier: 'BASIC', status: 'ACTIVE' } });
      const [here, elsewhere] = [browser(), browser()];
      await here.signIn(creator.email);
      await elsewhere.signIn(creator.email);

      const { status, json } = await here.call('DELETE', '/api/account');
      expect(status).to.equal(200);
      expect(json).to.deep.equal({ deleted: true, postsDeleted: 2 });
      expect(here.sessionToken).to.equal(undefined);
      expect(await prisma.user.count({ where: { id: creator.id } })).to.equal(0);
      expect(await prisma.post.count({ where: { authorId: creator.id } })).to.equal(0);
      expect(await prisma.subscription.count({ where: { creatorId: creator.id } })).to.equal(0);

      expect(await control.next((m) => m.type === 'user_deleted' && m.userId === creator.id)).to.deep.equal({ type: 'user_deleted', userId: creator.id });
      const lost = await control.next(
        (m) => m.type === 'entitlement_changed' && m.cause === 'post_deleted' && m.subjects.some((s) => s.kind === 'post' && s.postId === posts[0]!.id),
      );
      expect(lost.type === 'entitlement_changed' && lost.subjects).to.have.deep.members(posts.map((p) => ({ kind: 'post', postId: p.id })));

      expect((await elsewhere.call('GET', '/api/notifications')).status).to.equal(401);
      expect((await elsewhere.signOut()).status, 'signing out of a deleted account still clears the cookie').to.equal(200);
      expect(elsewhere.sessionToken).to.equal(undefined);
    });
  });
});
