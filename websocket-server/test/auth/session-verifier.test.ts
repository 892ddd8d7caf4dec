import { expect } from 'chai';
import { encode } from 'next-auth/jwt';
import { SessionVerifier } from '../../src/auth/session-verifier.ts';

const SECRET = 'unit-secret';

describe('auth/SessionVerifier', () => {
  const verifier = new SessionVerifier(SECRET);

  it('accepts a token written by next-auth encode and returns its sub', async () => {
    const token = await encode({ token: { sub: 'user-1', email: 'a@b.c' }, secret: SECRET });
    const result = await verifier.verify(token);
    expect(result).to.include({ ok: true, userId: 'user-1' });
  });
  it('refuses another secret as bad_key', async () => {
    const token = await encode({ token: { sub: 'user-1' }, secret: 'other' });
    expect(await verifier.verify(token)).to.deep.equal({ ok: false, reason: 'bad_key' });
  });
  it('refuses an expired token beyond the 15 s tolerance', async () => {
    const token = await encode({ token: { sub: 'user-1' }, secret: SECRET, maxAge: -30 });
    expect(await verifier.verify(token)).to.deep.equal({ ok: false, reason: 'expired' });
  });
  it('refuses a token without sub', async () => {
    const token = await encode({ token: { name: 'x' }, secret: SECRET });
    expect(await verifier.verify(token)).to.deep.equal({ ok: false, reason: 'no_subject' });
  });
  it('refuses malformed input without throwing', async () => {
    for (const bad of ['', 'a.b.c', 'a.b.c.d.e', '.....', 'x'.repeat(20_000)]) {
      expect(await verifier.verify(bad)).to.deep.equal({ ok: false, reason: 'malformed' });
    }
  });
  it('refuses a tampered ciphertext', async () => {
    const token = await encode({ token: { sub: 'user-1' }, secret: SECRET });
    const parts = token.split('.');
    parts[3] = parts[3]!.slice(0, -2) + (parts[3]!.endsWith('AA') ? 'BB' : 'AA');
    expect((await verifier.verify(parts.join('.'))).ok).to.equal(false);
  });
});
