/**
 * Is this token a live session right now? Decryption (session-verifier.ts) says whether the app
 * wrote it and whether it has expired; the database says whether the user still exists and
 * whether the session was ended since (RevokedSession by `sid`, "sign out everywhere" by
 * `User.sessionsValidAfter`, the same rule the app applies: access/session-rules.ts). Used for
 * the handshake and for every `refresh`.
 */
import type { SessionRegistry } from '../access/sessions.ts';
import { issuedBeforeCutoff } from '../access/session-rules.ts';
import type { Directory } from '../data/directory.ts';
import type { SessionVerifier, VerifiedSession, VerifyFailure } from './session-verifier.ts';

export type SessionFailure = VerifyFailure | 'unknown_user' | 'revoked' | 'unavailable';
/** `isCreator`: what the database said with the session (presence tracks creators' sockets only). */
export type SessionVerdict = { ok: true; session: VerifiedSession; isCreator: boolean } | { ok: false; reason: SessionFailure };

export class SessionCheck {
  readonly #verifier: SessionVerifier;
  readonly #directory: Directory;
  readonly #sessions: SessionRegistry;

  constructor(verifier: SessionVerifier, directory: Directory, sessions: SessionRegistry) {
    this.#verifier = verifier;
    this.#directory = directory;
    this.#sessions = sessions;
  }

  /** Both steps; for a refresh. */
  async check(token: string): Promise<SessionVerdict> {
    const seq = this.#sessions.seq;
    const verified = await this.#verifier.verify(token);
    if (!verified.ok) return verified;
    const { ok: _ok, ...session } = verified;
    return this.confirm(session, seq);
  }

  /** Decryption only: no database work (the handshake checks its caps between the two steps). */
  verify(token: string) {
    return this.#verifier.verify(token);
  }

  /**
   * The database step. `seq` is the session registry's sequence number noted before the token
   * was read: a sign-out announced since then (while this read was in flight) also counts.
   */
  async confirm(session: VerifiedSession, seq: number): Promise<SessionVerdict> {
    let state;
    try {
      state = await this.#directory.sessionState(session.userId, session.sessionId);
    } catch {
      return { ok: false, reason: 'unavailable' };
    }
    if (!state.exists) return { ok: false, reason: 'unknown_user' };
    if (state.sessionRevoked || issuedBeforeCutoff(session.issuedAt, state.sessionsValidAfter)) return { ok: false, reason: 'revoked' };
    if (this.#sessions.voidedSince(seq, session)) return { ok: false, reason: 'revoked' };
    return { ok: true, session, isCreator: state.isCreator };
  }
}
