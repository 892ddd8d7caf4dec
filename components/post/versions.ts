/**
 * Counters that never go backwards. Every change of a post's likes or comments increments the
 * post's `statsVersion`, and the events (`data.version`), the API's answers and the page carry the
 * version they reflect. A state older than one already applied (a replayed event, a late answer
 * to the viewer's own request, a refetch that raced an event) is ignored; a state without a
 * version (a publisher or an API that does not send one yet) is always applied.
 */
export class CounterVersion {
  #applied: number | undefined;

  constructor(initial?: number) {
    this.#applied = initial;
  }

  /** The highest version applied so far. */
  get applied(): number | undefined {
    return this.#applied;
  }

  /** Whether a state of `version` may be applied (not older than the last one); remembers it. */
  admit(version: unknown): boolean {
    if (typeof version !== 'number' || !Number.isFinite(version)) return true;
    if (this.#applied !== undefined && version < this.#applied) return false;
    this.#applied = version;
    return true;
  }
}

/** The version a value (an event's data, an API answer, a post view) says it reflects. */
export function versionOf(value: unknown): number | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { version, statsVersion } = value as { version?: unknown; statsVersion?: unknown };
  if (typeof version === 'number') return version;
  return typeof statsVersion === 'number' ? statsVersion : undefined;
}
