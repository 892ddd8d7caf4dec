/**
 * Verifies the session token that next-auth v4 writes: a JWE with `alg: dir`,
 * `enc: A256GCM`, whose key is HKDF-SHA256(NEXTAUTH_SECRET, salt "", info
 * "NextAuth.js Generated Encryption Key", 32 bytes) — the same derivation and the same 15 s
 * clock tolerance as `decode` in next-auth/jwt. The user id is the `sub` claim.
 *
 * `exp` is required: a token without it would open a socket that never has to end. `sid` (the
 * browser session, see lib/auth.ts) and `iat` are what sign-out and "sign out everywhere" match
 * on; a token without `iat` counts as issued at 0, so any "sign out everywhere" refuses it.
 *
 * Refusals are values, not exceptions: the caller closes the socket with 4001 whatever the
 * reason, and logs the reason (never the token).
 *
 * Decryption is node:crypto's AES-256-GCM, synchronous, with the key derived once per secret:
 * jose's `jwtDecrypt` goes through WebCrypto (an `importKey` and an async `decrypt` on the
 * thread pool, with their argument normalisation, per token): in the server under the connect
 * scenario jose and WebCrypto took ~456 µs of CPU per connection, this ~140 µs
 * (bench/compare/connect-costs.ts); in a quiet loop (bench/jwe-verify.ts) ~60 against ~32 µs
 * per token. Only what next-auth writes is
 * accepted, with jose's checks for it: the compact form, a protected header naming `dir` and
 * `A256GCM` with no `crit` or `zip`, an empty encrypted key, a 96-bit IV and a 128-bit tag, a
 * JSON object as claims, `iat`/`nbf`/`exp` numbers when present, `nbf` and `exp` against the
 * clock with the tolerance, and header copies of `iss`/`sub`/`aud` equal to the claims.
 */
import { createDecipheriv, hkdfSync } from 'node:crypto';

export type VerifyFailure = 'malformed' | 'bad_key' | 'expired' | 'no_subject' | 'no_expiry';

/** What a valid token says. Times in ms since the epoch. */
export interface VerifiedSession {
  userId: string;
  /** The `sid` claim: one browser session, revocable on its own by signing out. */
  sessionId: string | undefined;
  /** When the session began: the earlier of `iat` and `auth_time` (0 without either). */
  issuedAt: number;
  expiresAt: number;
}

export type VerifyResult = ({ ok: true } & VerifiedSession) | { ok: false; reason: VerifyFailure };

/** Far above a real session token (~500 bytes; next-auth chunks cookies past ~4 KB). */
const MAX_TOKEN_LENGTH = 16 * 1024;
/** next-auth's own `decode` tolerance; expiry on an open socket is enforced without it. */
const CLOCK_TOLERANCE_SECONDS = 15;

export function deriveNextAuthKey(secret: string): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', secret, '', 'NextAuth.js Generated Encryption Key', 32));
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;
/** An invalid token, told apart from a valid one that fails a check. */
const MALFORMED = { ok: false, reason: 'malformed' } as const;

export class SessionVerifier {
  readonly #key: Buffer;

  constructor(secret: string) {
    this.#key = Buffer.from(deriveNextAuthKey(secret));
  }

  async verify(token: string): Promise<VerifyResult> {
    return this.verifySync(token);
  }

  verifySync(token: string, nowMs = Date.now()): VerifyResult {
    if (token.length > MAX_TOKEN_LENGTH) return MALFORMED;
    const parts = token.split('.');
    if (parts.length !== 5) return MALFORMED;
    const [headerPart, encryptedKey, ivPart, ciphertextPart, tagPart] = parts as [string, string, string, string, string];
    if (!headerPart || encryptedKey !== '' || !ivPart || !tagPart) return MALFORMED;
    if (!BASE64URL.test(headerPart) || !BASE64URL.test(ivPart) || !BASE64URL.test(ciphertextPart) || !BASE64URL.test(tagPart)) return MALFORMED;
    const header = parseObject(Buffer.from(headerPart, 'base64url'));
    if (!header || header.alg !== 'dir' || header.enc !== 'A256GCM' || 'crit' in header || 'zip' in header) return MALFORMED;
    const iv = Buffer.from(ivPart, 'base64url');
    const tag = Buffer.from(tagPart, 'base64url');
    if (iv.length !== 12 || tag.length !== 16) return MALFORMED;
    let plaintext: Buffer;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, iv, { authTagLength: 16 });
      decipher.setAAD(Buffer.from(headerPart, 'ascii'));
      decipher.setAuthTag(tag);
      plaintext = Buffer.concat([decipher.update(Buffer.from(ciphertextPart, 'base64url')), decipher.final()]);
    } catch {
      // The tag does not match: another secret wrote it, or it was altered.
      return { ok: false, reason: 'bad_key' };
    }
    const payload = parseObject(plaintext);
    if (!payload) return MALFORMED;
    for (const claim of ['iss', 'sub', 'aud'] as const) {
      if (header[claim] !== undefined && JSON.stringify(header[claim]) !== JSON.stringify(payload[claim])) return MALFORMED;
    }
    for (const claim of ['iat', 'nbf', 'exp'] as const) {
      if (payload[claim] !== undefined && typeof payload[claim] !== 'number') return MALFORMED;
    }
    const now = Math.floor(nowMs / 1000);
    if (typeof payload.nbf === 'number' && payload.nbf > now + CLOCK_TOLERANCE_SECONDS) return MALFORMED;
    if (typeof payload.exp === 'number' && payload.exp <= now - CLOCK_TOLERANCE_SECONDS) return { ok: false, reason: 'expired' };
    if (typeof payload.sub !== 'string' || payload.sub.length === 0) return { ok: false, reason: 'no_subject' };
    if (typeof payload.exp !== 'number' || !Number.isFinite(payload.exp)) return { ok: false, reason: 'no_expiry' };
    const sessionId = typeof payload.sid === 'string' && payload.sid.length > 0 && payload.sid.length <= 64 ? payload.sid : undefined;
    // next-auth re-stamps `iat` whenever it rolls the session cookie over; `auth_time` (set by
    // lib/auth.ts at sign-in) does not move, so the earlier of the two is when the session began.
    const iat = typeof payload.iat === 'number' && Number.isFinite(payload.iat) ? payload.iat : 0;
    const authTime = typeof payload.auth_time === 'number' && Number.isFinite(payload.auth_time) ? payload.auth_time : iat;
    const issuedAt = Math.min(iat, authTime) * 1000;
    return { ok: true, userId: payload.sub, sessionId, issuedAt, expiresAt: payload.exp * 1000 };
  }
}

/** A JSON object from UTF-8 bytes, or undefined (invalid UTF-8, invalid JSON, not an object). */
function parseObject(bytes: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(STRICT_UTF8.decode(bytes));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });
