import { createCipheriv, randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { EncryptJWT, jwtDecrypt } from 'jose';
import { encode } from 'next-auth/jwt';
import { SessionVerifier, deriveNextAuthKey } from '../../src/auth/session-verifier.ts';

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

/**
 * The verifier decrypts with node:crypto instead of jose's jwtDecrypt; jose (what next-auth's
 * own `decode` runs) stays the oracle: every token below gets the same accept/refuse from both.
 * Tokens are sealed by hand (AES-256-GCM, the protected header as AAD), since jose refuses to
 * write some of the headers under test.
 */
describe('auth/SessionVerifier against jose', () => {
  const verifier = new SessionVerifier(SECRET);
  const key = deriveNextAuthKey(SECRET);
  const now = Math.floor(Date.now() / 1000);
  const seal = (payload: unknown, header: Record<string, unknown> = {}) => {
    const protectedHeader = Buffer.from(JSON.stringify({ alg: 'dir', enc: 'A256GCM', ...header })).toString('base64url');
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(protectedHeader, 'ascii'));
    const ciphertext = Buffer.concat([cipher.update(typeof payload === 'string' ? payload : JSON.stringify(payload)), cipher.final()]);
    return `${protectedHeader}..${iv.toString('base64url')}.${ciphertext.toString('base64url')}.${cipher.getAuthTag().toString('base64url')}`;
  };
  const joseAccepts = async (token: string) => {
    try {
      await jwtDecrypt(token, key, { keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'], clockTolerance: 15 });
      return true;
    } catch {
      return false;
    }
  };
  const base = { sub: 'user-1', iat: now, exp: now + 600 };

  it('agrees with jose on headers, claims and encodings next-auth never writes', async () => {
    const plain = await new EncryptJWT(base).setProtectedHeader({ alg: 'dir', enc: 'A256GCM' }).encrypt(key);
    const [h, , iv, ct, tag] = plain.split('.');
    const cases: Array<[string, string]> = [
      ['written by jose', plain],
      ['sealed by hand', seal(base)],
      ['crit header', seal(base, { crit: ['exp'], exp: 1 })],
      ['zip header', seal(base, { zip: 'DEF' })],
      ['alg A256KW', seal(base, { alg: 'A256KW' })],
      ['enc A128GCM', seal(base, { enc: 'A128GCM' })],
      ['nbf in the future', seal({ ...base, nbf: now + 60 })],
      ['nbf within tolerance', seal({ ...base, nbf: now + 10 })],
      ['iat a string', seal({ ...base, iat: 'yesterday' })],
      ['exp a string', seal({ ...base, exp: String(now + 600) })],
      ['expired within tolerance', seal({ ...base, exp: now - 5 })],
      ['expired past tolerance', seal({ ...base, exp: now - 16 })],
      ['header sub differs', seal(base, { sub: 'user-2' })],
      ['header sub equal', seal(base, { sub: 'user-1' })],
      ['claims an array', seal([1, 2])],
      ['claims not JSON', seal('not json')],
      ['extra header fields', seal(base, { kid: 'k1', typ: 'JWT' })],
      ['non-empty encrypted key', `${h}.AAAA.${iv}.${ct}.${tag}`],
      ['short iv', `${h}..${iv!.slice(0, 8)}.${ct}.${tag}`],
      ['short tag', `${h}..${iv}.${ct}.${tag!.slice(0, 12)}`],
      ['padding in a part', `${h}..${iv}=.${ct}.${tag}`],
      ['header re-encoded (AAD)', `${Buffer.from('{"enc":"A256GCM","alg":"dir"}').toString('base64url')}..${iv}.${ct}.${tag}`],
      ['no ciphertext', `${h}..${iv}..${tag}`],
    ];
    for (const [name, token] of cases) expect((await verifier.verify(token)).ok, name).to.equal(await joseAccepts(token));
    expect((await verifier.verify(plain)).ok).to.equal(true);
  });

  it('refuses crit, zip and an nbf in the future as malformed, an expiry past the tolerance as expired', async () => {
    expect(await verifier.verify(seal(base, { crit: ['x'], x: 1 }))).to.deep.equal({ ok: false, reason: 'malformed' });
    expect(await verifier.verify(seal(base, { zip: 'DEF' }))).to.deep.equal({ ok: false, reason: 'malformed' });
    expect(await verifier.verify(seal({ ...base, nbf: now + 60 }))).to.deep.equal({ ok: false, reason: 'malformed' });
    expect(await verifier.verify(seal({ ...base, exp: now - 16 }))).to.deep.equal({ ok: false, reason: 'expired' });
    expect(await verifier.verify(seal({ sub: 'user-1', iat: now }))).to.deep.equal({ ok: false, reason: 'no_expiry' });
    expect(await verifier.verify(seal({ ...base, sid: 's1', auth_time: now - 100 }))).to.deep.equal({
      ok: true,
      userId: 'user-1',
      sessionId: 's1',
      issuedAt: (now - 100) * 1000,
      expiresAt: (now + 600) * 1000,
    });
  });
});
