/**
 * Who may start a handshake, decided from counters alone, before any decryption or database
 * work, so a storm of connects costs almost nothing: a cap on connections (open and in
 * progress), a cap on handshakes in progress (each holds a database round trip), and a
 * per-address connect rate. The per-user cap needs the user id, so it is checked right after
 * the token is decrypted, still before the database. The excess is answered with an HTTP status
 * and `Retry-After` (seconds) on the upgrade.
 */
import type { IncomingMessage } from 'node:http';
import { clientAddress } from './client-address.ts';
import { KeyedBuckets } from './keyed-buckets.ts';

export interface AdmissionLimits {
  /** Open plus in-progress connections of this process. */
  maxConnections: number;
  /** Handshakes between the upgrade request and the `connected` frame. */
  maxPendingHandshakes: number;
  /** Open connections of one user on this process. */
  maxConnectionsPerUser: number;
  /** Sustained connects per second from one address, and the burst allowed at once. */
  connectRatePerAddress: number;
  connectBurstPerAddress: number;
  /** Read the client address from X-Real-IP / X-Forwarded-For (behind nginx). */
  trustProxy: boolean;
}

export type AdmissionRefusal = {
  ok: false;
  status: 429 | 503;
  retryAfterSeconds: number;
  reason: 'max_connections' | 'pending_handshakes' | 'address_rate' | 'user_connections';
};

/** A handshake admitted past the counters: holds a pending slot (and later a user slot). */
export interface AdmissionTicket {
  ok: true;
  /**
   * The per-user cap, once the token names the user (after decryption, before the database):
   * the user's open connections plus their handshakes still in flight, each of which holds a
   * user slot from here, so that concurrent connects of one user cannot overshoot the cap.
   */
  claimUser: (userId: string, openForUser: number) => AdmissionRefusal | null;
  /** Gives back the slots; call it once the handshake ended either way (later calls are no-ops). */
  release: () => void;
}

export class Admission {
  readonly #limits: AdmissionLimits;
  readonly #byAddress: KeyedBuckets;
  /** Handshakes in flight per user that passed `claimUser` (not yet open connections). */
  readonly #claimsByUser = new Map<string, number>();
  #pending = 0;

  constructor(limits: AdmissionLimits) {
    this.#limits = limits;
    this.#byAddress = new KeyedBuckets(limits.connectRatePerAddress, limits.connectBurstPerAddress);
  }

  get pending(): number {
    return this.#pending;
  }

  /**
   * On success the caller holds a pending-handshake slot and must call `release` once the
   * handshake ends either way: when the socket has become a connection (and is counted as open
   * from then on) or has been refused.
   */
  admit(request: IncomingMessage, openConnections: number): AdmissionTicket | AdmissionRefusal {
    const limits = this.#limits;
    if (openConnections + this.#pending >= limits.maxConnections) {
      return { ok: false, status: 503, retryAfterSeconds: 5, reason: 'max_connections' };
    }
    if (this.#pending >= limits.maxPendingHandshakes) {
      return { ok: false, status: 503, retryAfterSeconds: 1, reason: 'pending_handshakes' };
    }
    const address = clientAddress(request, limits.trustProxy);
    if (!this.#byAddress.take(address)) {
      return { ok: false, status: 429, retryAfterSeconds: Math.max(1, Math.ceil(this.#byAddress.retryAfterMs(address) / 1000)), reason: 'address_rate' };
    }
    this.#pending++;
    let released = false;
    let claimed: string | undefined;
    return {
      ok: true,
      claimUser: (userId, openForUser) => {
        if (released || claimed !== undefined) throw new Error('claimUser: once per live ticket');
        const inFlight = this.#claimsByUser.get(userId) ?? 0;
        if (openForUser + inFlight >= limits.maxConnectionsPerUser) {
          return { ok: false, status: 429, retryAfterSeconds: 10, reason: 'user_connections' };
        }
        this.#claimsByUser.set(userId, inFlight + 1);
        claimed = userId;
        return null;
      },
      release: () => {
        if (released) return;
        released = true;
        this.#pending--;
        if (claimed === undefined) return;
        const left = (this.#claimsByUser.get(claimed) ?? 1) - 1;
        if (left > 0) this.#claimsByUser.set(claimed, left);
        else this.#claimsByUser.delete(claimed);
      },
    };
  }
}
