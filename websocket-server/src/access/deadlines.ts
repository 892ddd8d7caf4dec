/**
 * One timer for many deadlines: token expiries and grant expiries of every connection on the
 * node. A binary min-heap ordered by time, with lazy deletion (a cancelled or rescheduled entry
 * stays in the heap and is skipped when it surfaces), so schedule and cancel are O(log n) and
 * 10,000 sockets cost one Node timer instead of 10,000.
 *
 * A deadline fires at or after its time, never before: the timer is re-armed for the earliest
 * live entry, and Node timers may run a few ms late.
 */
export interface DeadlineHandle {
  cancel(): void;
}

const noop = () => {};

/**
 * A deadline, and its own handle: `cancel` on the prototype, not a closure per deadline (every
 * connection holds one for its token's expiry; bench/heap-census.ts counted the closures).
 */
class Entry implements DeadlineHandle {
  live = true;

  constructor(
    readonly owner: Deadlines,
    readonly at: number,
    public fire: () => void,
  ) {}

  cancel(): void {
    cancelEntry(this.owner, this);
  }
}
/** Set in Deadlines' static block (it reaches the private state). */
let cancelEntry: (deadlines: Deadlines, entry: Entry) => void;

/** Node caps timers at 2^31-1 ms (~24.8 days); a later deadline re-arms when that one fires. */
const MAX_TIMER_MS = 2_147_483_647;

export class Deadlines {
  readonly #heap: Entry[] = [];
  readonly #now: () => number;
  readonly #onError: (error: unknown) => void;
  #timer: NodeJS.Timeout | undefined;
  #armedFor = Infinity;
  #live = 0;

  constructor(options: { now?: () => number; onError?: (error: unknown) => void } = {}) {
    this.#now = options.now ?? Date.now;
    this.#onError = options.onError ?? (() => {});
  }

  /** Deadlines not yet fired or cancelled. */
  get size(): number {
    return this.#live;
  }

  /** Runs `fire` once at `at` (ms since the epoch); at once (next tick) if `at` has passed. */
  schedule(at: number, fire: () => void): DeadlineHandle {
    const entry = new Entry(this, at, fire);
    this.#push(entry);
    this.#live++;
    this.#arm();
    return entry;
  }

  static {
    cancelEntry = (deadlines, entry) => {
      if (!entry.live || entry.owner !== deadlines) return;
      entry.live = false;
      // A dead entry waits in the heap until it surfaces: let go of what its callback holds.
      entry.fire = noop;
      deadlines.#live--;
      // Cancelled entries are dropped when they reach the top; if every entry is dead, stop the
      // timer so the heap can be cleared and nothing keeps the process awake.
      if (deadlines.#live === 0) deadlines.clear();
      // Refreshes cancel and reschedule often; rebuild when dead entries dominate, so the heap
      // stays proportional to the live deadlines.
      else if (deadlines.#heap.length > 64 && deadlines.#heap.length > 3 * deadlines.#live) deadlines.#compact();
    };
  }

  /** Cancels everything (shutdown). */
  clear(): void {
    for (const entry of this.#heap) entry.live = false;
    this.#heap.length = 0;
    this.#live = 0;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedFor = Infinity;
  }

  #arm(): void {
    this.#dropDeadTop();
    const top = this.#heap[0];
    if (!top) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#armedFor = Infinity;
      return;
    }
    if (this.#timer !== undefined && this.#armedFor <= top.at) return;
    clearTimeout(this.#timer);
    this.#armedFor = top.at;
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, top.at - this.#now()));
    this.#timer = setTimeout(() => this.#run(), delay);
    this.#timer.unref();
  }

  #run(): void {
    this.#timer = undefined;
    this.#armedFor = Infinity;
    const now = this.#now();
    for (let top = this.#heap[0]; top && top.at <= now; top = this.#heap[0]) {
      this.#pop();
      if (!top.live) continue;
      top.live = false;
      this.#live--;
      try {
        top.fire();
      } catch (error) {
        // One failing deadline must not stop the others due at the same time.
        this.#onError(error);
      }
    }
    this.#arm();
  }

  #compact(): void {
    const live = this.#heap.filter((entry) => entry.live);
    this.#heap.length = 0;
    for (const entry of live) this.#push(entry);
  }

  #dropDeadTop(): void {
    while (this.#heap[0] && !this.#heap[0].live) this.#pop();
  }

  #push(entry: Entry): void {
    const heap = this.#heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.at <= heap[i]!.at) break;
      [heap[parent], heap[i]] = [heap[i]!, heap[parent]!];
      i = parent;
    }
  }

  #pop(): void {
    const heap = this.#heap;
    const last = heap.pop();
    if (heap.length === 0 || !last) return;
    heap[0] = last;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < heap.length && heap[left]!.at < heap[smallest]!.at) smallest = left;
      if (right < heap.length && heap[right]!.at < heap[smallest]!.at) smallest = right;
      if (smallest === i) return;
      [heap[smallest], heap[i]] = [heap[i]!, heap[smallest]!];
      i = smallest;
    }
  }
}
