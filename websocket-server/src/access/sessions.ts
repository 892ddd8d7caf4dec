/**
 * The sessions open on this node, by user and by browser session (`sid`), so a control message
 * ends exactly the sockets it names (Phoenix: a broadcast to the socket id ends a user's
 * sockets on every node). Ending a session closes its sockets with 4003.
 */
import type { VerifiedSession } from '../auth/session-verifier.ts';
import type { ControlMessage } from '../protocol/index.ts';
import { RecentChanges } from './recent-changes.ts';
import { issuedBeforeCutoff } from './session-rules.ts';

export type SessionMessage = Extract<ControlMessage, { type: 'session_revoked' | 'user_sessions_revoked' | 'user_deleted' }>;

export interface SessionHolder {
  readonly session: VerifiedSession;
  /** Closes the socket: this session is over. */
  endSession(message: SessionMessage): void;
}

/** Does `message` void `session`? */
export function voids(message: SessionMessage, session: VerifiedSession): boolean {
  if (message.userId !== session.userId) return false;
  switch (message.type) {
    case 'session_revoked':
      return session.sessionId === message.sessionId;
    case 'user_sessions_revoked':
      return issuedBeforeCutoff(session.issuedAt, message.notBefore);
    case 'user_deleted':
      return true;
    default: {
      const unreachable: never = message;
      throw new Error(`unknown session message ${JSON.stringify(unreachable)}`);
    }
  }
}

function keysOf(message: SessionMessage): string[] {
  switch (message.type) {
    case 'session_revoked':
      return [`sid:${message.sessionId}`];
    case 'user_sessions_revoked':
      return [`cutoff:${message.userId}`];
    case 'user_deleted':
      return [`deleted:${message.userId}`];
  }
}

function keysFor(session: VerifiedSession): string[] {
  const keys = [`cutoff:${session.userId}`, `deleted:${session.userId}`];
  if (session.sessionId) keys.push(`sid:${session.sessionId}`);
  return keys;
}

export class SessionRegistry {
  readonly #byUser = new Map<string, Set<SessionHolder>>();
  readonly #recent = new RecentChanges<SessionMessage>();

  /** Note this before reading a session's state from the database (see RecentChanges). */
  get seq(): number {
    return this.#recent.seq;
  }

  /** Distinct users with at least one open session on this node. */
  get userCount(): number {
    return this.#byUser.size;
  }

  connectionsOf(userId: string): number {
    return this.#byUser.get(userId)?.size ?? 0;
  }

  add(holder: SessionHolder): void {
    let set = this.#byUser.get(holder.session.userId);
    if (!set) this.#byUser.set(holder.session.userId, (set = new Set()));
    set.add(holder);
  }

  remove(holder: SessionHolder): void {
    const set = this.#byUser.get(holder.session.userId);
    set?.delete(holder);
    if (set?.size === 0) this.#byUser.delete(holder.session.userId);
  }

  /** Every open session on this node. */
  all(): SessionHolder[] {
    const holders: SessionHolder[] = [];
    for (const set of this.#byUser.values()) holders.push(...set);
    return holders;
  }

  /** Ends every local socket `message` voids; returns how many. */
  apply(message: SessionMessage): number {
    this.#recent.record(keysOf(message), message);
    let ended = 0;
    for (const holder of [...(this.#byUser.get(message.userId) ?? [])]) {
      if (!voids(message, holder.session)) continue;
      holder.endSession(message);
      ended++;
    }
    return ended;
  }

  /**
   * The message, if any, that voided `session` after `seq`: a handshake or refresh that read
   * the database before a sign-out committed, and registered after its announcement passed.
   */
  voidedSince(seq: number, session: VerifiedSession): SessionMessage | undefined {
    return this.#recent.since(seq, keysFor(session)).find((message) => voids(message, session));
  }
}
