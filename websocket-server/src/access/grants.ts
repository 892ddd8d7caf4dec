/**
 * Every live membership that can lose access, indexed by what it depends on, so a control
 * message finds exactly the memberships it concerns (cost follows what changed: no periodic
 * re-scan of every member against the database). A grant with a `validUntil` also gets a
 * deadline, at which its holder re-checks it.
 */
import { subjectKey, type EntitlementSubject } from '../protocol/index.ts';
import type { DeadlineHandle, Deadlines } from './deadlines.ts';

/** The connection side of a grant: re-checks one of its channels (see Subscriptions#recheck). */
export interface GrantHolder {
  recheck(channel: string, cause: string, changedAt?: number): void;
}

export class GrantRecord {
  readonly holder: GrantHolder;
  readonly channel: string;
  keys: readonly string[] = [];
  deadline: DeadlineHandle | undefined;

  constructor(holder: GrantHolder, channel: string) {
    this.holder = holder;
    this.channel = channel;
  }
}

export class GrantRegistry {
  readonly #byKey = new Map<string, Set<GrantRecord>>();
  readonly #deadlines: Deadlines;
  #count = 0;

  constructor(deadlines: Deadlines) {
    this.#deadlines = deadlines;
  }

  /** Grants that depend on something or expire by themselves. */
  get size(): number {
    return this.#count;
  }

  /**
   * Indexes `record` under `dependsOn` and arms its deadline, replacing whatever it was indexed
   * under before (a re-check can change both: a public post that became locked now also
   * depends on the reader's subscription).
   */
  set(record: GrantRecord, dependsOn: readonly EntitlementSubject[], validUntil: number | null): void {
    this.remove(record);
    record.keys = dependsOn.map(subjectKey);
    for (const key of record.keys) {
      let set = this.#byKey.get(key);
      if (!set) this.#byKey.set(key, (set = new Set()));
      set.add(record);
    }
    if (validUntil !== null) {
      record.deadline = this.#deadlines.schedule(validUntil, () => record.holder.recheck(record.channel, 'grant_expired'));
    }
    if (record.keys.length > 0 || record.deadline) this.#count++;
  }

  remove(record: GrantRecord): void {
    if (record.keys.length > 0 || record.deadline) this.#count--;
    for (const key of record.keys) {
      const set = this.#byKey.get(key);
      set?.delete(record);
      if (set?.size === 0) this.#byKey.delete(key);
    }
    record.keys = [];
    record.deadline?.cancel();
    record.deadline = undefined;
  }

  /** Every grant that depends on something (for a re-check after missed control messages). */
  all(): GrantRecord[] {
    const found = new Set<GrantRecord>();
    for (const set of this.#byKey.values()) for (const record of set) found.add(record);
    return [...found];
  }

  /** The grants indexed under any of `keys`, each once. */
  find(keys: readonly string[]): GrantRecord[] {
    const found = new Set<GrantRecord>();
    for (const key of keys) for (const record of this.#byKey.get(key) ?? []) found.add(record);
    return [...found];
  }
}
