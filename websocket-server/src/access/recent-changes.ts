/**
 * Closes the window between "read the database" and "start listening for changes".
 *
 * A subscribe (or a handshake, or a refresh) reads access from the database and only then
 * registers for control messages. A change committed in between is announced while nobody is
 * registered for it, and would be missed for as long as the membership lives. So every control
 * message bumps a sequence number and is remembered under its keys for a while; an operation
 * notes the sequence number when it starts and, once registered, asks whether any of its keys
 * changed since then, and re-checks if so.
 *
 * Bounded: entries older than `retainMs` (far above any database timeout) are pruned, and at
 * most `maxEntries` are kept (the oldest go first; an operation that old has timed out anyway).
 */
export class RecentChanges<T> {
  readonly #entries = new Map<string, { seq: number; at: number; value: T }>();
  readonly #retainMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;
  #seq = 0;

  constructor(options: { retainMs?: number; maxEntries?: number; now?: () => number } = {}) {
    this.#retainMs = options.retainMs ?? 60_000;
    this.#maxEntries = options.maxEntries ?? 20_000;
    this.#now = options.now ?? Date.now;
  }

  /** The current sequence number: note it before reading the database. */
  get seq(): number {
    return this.#seq;
  }

  record(keys: readonly string[], value: T): void {
    const seq = ++this.#seq;
    const at = this.#now();
    for (const key of keys) {
      // Re-inserting moves the key to the end, so the map stays ordered by time.
      this.#entries.delete(key);
      this.#entries.set(key, { seq, at, value });
    }
    this.#prune(at);
  }

  /** The changes recorded under any of `keys` after `since`, oldest first. */
  since(since: number, keys: readonly string[]): T[] {
    const found: Array<{ seq: number; value: T }> = [];
    for (const key of keys) {
      const entry = this.#entries.get(key);
      if (entry && entry.seq > since) found.push(entry);
    }
    return found.sort((a, b) => a.seq - b.seq).map((entry) => entry.value);
  }

  #prune(now: number): void {
    for (const [key, entry] of this.#entries) {
      if (this.#entries.size <= this.#maxEntries && now - entry.at <= this.#retainMs) break;
      this.#entries.delete(key);
    }
  }
}
