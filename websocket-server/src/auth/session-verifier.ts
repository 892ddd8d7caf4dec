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
 */
import { hkdfSync } from 'node:crypto';
import { jwtDecrypt, errors } from 'jose';

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

export class SessionVerifier {
  readonly #key: Uint8Array;

  constructor(secret: string) {
    this.#key = deriveNextAuthKey(secret);
  }

  async verify(token: string): Promise<VerifyResult> {
    if (token.length > MAX_TOKEN_LENGTH || token.split('.').length !== 5) return { ok: false, reason: 'malformed' };
    try {
      const { payload } = await jwtDecrypt(token, this.#key, {
        keyManagementAlgorithms: ['dir'],
        contentEncryptionAlgorithms: ['A256GCM'],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
      });
      if (typeof payload.sub !== 'string' || payload.sub.length === 0) return { ok: false, reason: 'no_subject' };
      if (typeof payload.exp !== 'number' || !Number.isFinite(payload.exp)) return { ok: false, reason: 'no_expiry' };
      const sessionId = typeof payload.sid === 'string' && payload.sid.length > 0 && payload.sid.length <= 64 ? payload.sid : undefined;
      // next-auth re-stamps `iat` whenever it rolls the session cookie over; `auth_time` (set by
      // lib/auth.ts at sign-in) does not move, so the earlier of the two is when the session began.
      const iat = typeof payload.iat === 'number' && Number.isFinite(payload.iat) ? payload.iat : 0;
      const authTime = typeof payload.auth_time === 'number' && Number.isFinite(payload.auth_time) ? payload.auth_time : iat;
      const issuedAt = Math.min(iat, authTime) * 1000;
      return { ok: true, userId: payload.sub, sessionId, issuedAt, expiresAt: payload.exp * 1000 };
    } catch (error) {
      if (error instanceof errors.JWTExpired) return { ok: false, reason: 'expired' };
      if (error instanceof errors.JWEDecryptionFailed) return { ok: false, reason: 'bad_key' };
      return { ok: false, reason: 'malformed' };
    }
  }
}
