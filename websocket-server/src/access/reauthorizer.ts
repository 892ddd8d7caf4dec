/**
 * Live re-authorization: an `entitlement_changed` control message names subjects (a
 * subscription, a purchase, a post); every membership on this node that depends on one of them
 * is re-checked against the database by its own channel policy, the same rule that admitted
 * it. Only those memberships: the cost follows what changed.
 */
import { subjectKey, type ControlMessage } from '../protocol/index.ts';
import type { GrantRegistry } from './grants.ts';
import { RecentChanges } from './recent-changes.ts';

export type EntitlementMessage = Extract<ControlMessage, { type: 'entitlement_changed' }>;
type Change = { cause: string; at: number | undefined };

export class Reauthorizer {
  readonly grants: GrantRegistry;
  readonly #recent = new RecentChanges<Change>();

  constructor(grants: GrantRegistry) {
    this.grants = grants;
  }

  /** Note this before an authorization reads the database (see RecentChanges). */
  get seq(): number {
    return this.#recent.seq;
  }

  /** Asks every affected membership to re-check itself; returns how many were asked. */
  apply(message: EntitlementMessage): number {
    const keys = message.subjects.map(subjectKey);
    this.#recent.record(keys, { cause: message.cause, at: message.at });
    const affected = this.grants.find(keys);
    for (const record of affected) record.holder.recheck(record.channel, message.cause, message.at);
    return affected.length;
  }

  /**
   * Control messages published while this node's broker subscription was down never reach it:
   * after a reconnect every grant that depends on something is re-checked once. Returns how many.
   */
  recheckAll(cause: string): number {
    const records = this.grants.all();
    for (const record of records) record.holder.recheck(record.channel, cause);
    return records.length;
  }

  /** The latest change under `keys` after `seq`: a grant read before it must be re-checked. */
  changedSince(seq: number, keys: readonly string[]): Change | undefined {
    return this.#recent.since(seq, keys).at(-1);
  }
}
