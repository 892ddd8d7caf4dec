/**
 * Coalesces socket writes: frames queued during one turn of the event loop are written to each
 * socket once, inside cork()/uncork(), on the next `setImmediate`. Redis often hands several
 * messages over in one read; one write per socket per message would cost a syscall each.
 * (uWebSockets' corking and Centrifugo's write batching do the same.)
 *
 * One socket whose flush throws is terminated and reported; the others queued in the same
 * batch are still written.
 */
export interface Flushable {
  flush(): void;
  terminate(): void;
}

export class WriteBatcher {
  readonly #dirty = new Set<Flushable>();
  readonly #onError: (error: unknown) => void;
  #scheduled = false;

  constructor(onError: (error: unknown) => void = () => {}) {
    this.#onError = onError;
  }

  schedule(target: Flushable): void {
    this.#dirty.add(target);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.flushAll());
  }

  flushAll(): void {
    this.#scheduled = false;
    const targets = [...this.#dirty];
    this.#dirty.clear();
    for (const target of targets) {
      try {
        target.flush();
      } catch (error) {
        this.#onError(error);
        try {
          target.terminate();
        } catch {
          // Already gone.
        }
      }
    }
  }
}
