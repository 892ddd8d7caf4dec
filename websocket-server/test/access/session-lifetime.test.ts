/**
 * A socket lives as long as its session token, and no longer: 4002 at `exp` unless the client
 * refreshed; a refresh must be a valid, live token of the same user; tokens without `exp`, of a
 * signed-out session or cut off by "sign out everywhere" are refused at the handshake.
 */
import { expect } from 'chai';
import { EncryptJWT } from 'jose';
import { deriveNextAuthKey } from '../../src/auth/session-verifier.ts';
import { CLOSE_CODES, channelName } from '../../src/protocol/index.ts';
import { TEST_NEXTAUTH_SECRET } from '../../../test/support/env.ts';
import { TestClient } from '../support/client.ts';
import { Fixtures } from '../support/fixtures.ts';
import { startServer, type ServerProcess } from '../support/server-process.ts';
import { mintSessionToken } from '../support/tokens.ts';

/** A next-auth-shaped JWE with exactly the claims given (next-auth's encode always adds exp). */
async function rawToken(claims: Record<string, unknown>): Promise<string> {
  return new EncryptJWT(claims)
    .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
    .setIssuedAt()
    .encrypt(deriveNextAuthKey(TEST_NEXTAUTH_SECRET));
}

describe('Session lifetime', () => {
  let server: ServerProcess;
  let fixtures: Fixtures;

  before(async () => {
    fixtures = new Fixtures();
    server = await startServer({ broker: 'memory' });
  });
  after(async () => {
    await server?.stop();
    await fixtures?.close();
  });

  it('closes the socket with 4002 when the token expires, and says when in the connected frame', async () => {
    const user = await fixtures.user();
    // 20 sockets with tokens expiring at different instants: how close to exp do they close?
    const clients = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        await new Promise((resolve) => setTimeout(resolve, i * 50));
        return TestClient.connect(server.url, { token: await mintSessionToken(user.id, { maxAgeSeconds: 2 + (i % 3) }) });
      }),
    );
    await clients[0]!.mustSubscribe(channelName.notifications(user.id));
    const lateness = await Promise.all(
      clients.map(async (client) => {
        const { expiresAt } = client.frames[0] as { expiresAt: number };
        expect(expiresAt).to.be.within(Date.now() - 5_000, Date.now() + 5_000);
        const closed = await client.closed;
        expect(closed.code).to.equal(CLOSE_CODES.sessionExpired);
        return Date.now() - expiresAt;
      }),
    );
    lateness.sort((a, b) => a - b);
    // Never before exp; at most a little after (one timer and a close handshake).
    expect(lateness[0]).to.be.at.least(0);
    expect(lateness.at(-1)).to.be.at.most(1_000);
    console.log(`      closed after exp: p50 ${lateness[10]} ms, max ${lateness.at(-1)} ms (20 sockets)`);
  });

  it('keeps a socket open past its first expiry when the client refreshes, until the new expiry', async () => {
    const user = await fixtures.user();
    const client = await TestClient.connect(server.url, { token: await mintSessionToken(user.id, { maxAgeSeconds: 2 }) });
    const firstExpiry = (client.frames[0] as { expiresAt: number }).expiresAt;
    const reply = await client.request({ type: 'refresh', token: await mintSessionToken(user.id, { maxAgeSeconds: 4 }) });
    expect(reply.type).to.equal('refreshed');
    const secondExpiry = (reply as { expiresAt: number }).expiresAt;
    expect(secondExpiry).to.be.greaterThan(firstExpiry);
    // Past the first expiry the socket still answers.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, firstExpiry - Date.now()) + 300));
    expect((await client.request({ type: 'ping' })).type).to.equal('pong');
    expect((await client.closed).code).to.equal(CLOSE_CODES.sessionExpired);
    expect(Date.now()).to.be.at.least(secondExpiry);
  });

  it('answers a refresh with another user’s token with unauthorized, then closes with 4001', async () => {
    const [alice, mallory] = [await fixtures.user(), await fixtures.user()];
    const client = await TestClient.connect(server.url, { token: await mintSessionToken(alice.id) });
    const reply = await client.request({ type: 'refresh', token: await mintSessionToken(mallory.id) });
    expect(reply).to.include({ type: 'error', code: 'unauthorized' });
    expect((await client.closed).code).to.equal(CLOSE_CODES.unauthorized);
  });

  it('answers a refresh with an invalid or expired token with unauthorized, then closes with 4001', async () => {
    const user = await fixtures.user();
    for (const token of ['not.a.jwe.at.all', await mintSessionToken(user.id, { maxAgeSeconds: -60 })]) {
      const client = await TestClient.connect(server.url, { token: await mintSessionToken(user.id) });
      expect(await client.request({ type: 'refresh', token })).to.include({ type: 'error', code: 'unauthorized' });
      expect((await client.closed).code).to.equal(CLOSE_CODES.unauthorized);
    }
  });

  it('refuses a token without exp (it would open a socket that never has to end)', async () => {
    const user = await fixtures.user();
    const withExp = await TestClient.connect(server.url, { token: await rawToken({ sub: user.id, exp: Math.floor(Date.now() / 1000) + 60 }) });
    withExp.close();
    const client = TestClient.open(server.url, { token: await rawToken({ sub: user.id }) });
    expect((await client.closed).code).to.equal(CLOSE_CODES.unauthorized);
    expect(server.log()).to.include('"reason":"no_expiry"');
  });

  it('refuses a signed-out session (its sid is in RevokedSession) and keeps other sessions of the user', async () => {
    const user = await fixtures.user();
    const live = await TestClient.connect(server.url, { token: await mintSessionToken(user.id, { claims: { sid: 'sid-live' } }) });
    await fixtures.prisma.revokedSession.create({ data: { sessionId: 'sid-gone', userId: user.id, expiresAt: new Date(Date.now() + 3_600_000) } });
    const gone = TestClient.open(server.url, { token: await mintSessionToken(user.id, { claims: { sid: 'sid-gone' } }) });
    expect((await gone.closed).code).to.equal(CLOSE_CODES.unauthorized);
    expect((await live.request({ type: 'ping' })).type).to.equal('pong');
    // A refresh with the revoked session's token is refused too.
    expect(await live.request({ type: 'refresh', token: await mintSessionToken(user.id, { claims: { sid: 'sid-gone' } }) })).to.include({
      code: 'unauthorized',
    });
    expect((await live.closed).code).to.equal(CLOSE_CODES.unauthorized);
  });

  it('refuses tokens issued up to the "sign out everywhere" cutoff, and accepts later ones', async () => {
    const user = await fixtures.user();
    const before = await mintSessionToken(user.id);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await fixtures.prisma.user.update({ where: { id: user.id }, data: { sessionsValidAfter: new Date() } });
    expect((await TestClient.open(server.url, { token: before }).closed).code).to.equal(CLOSE_CODES.unauthorized);
    // iat has whole seconds: a token minted in a later second is accepted.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const after = await TestClient.connect(server.url, { token: await mintSessionToken(user.id) });
    expect((await after.request({ type: 'ping' })).type).to.equal('pong');
    after.close();
  });
});
