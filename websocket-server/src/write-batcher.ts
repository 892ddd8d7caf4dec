/**
 * Coalesces socket writes: frames queued during one turn of the event loop are written to each
 * socket once, inside cork()/uncork(), on the next `setImmediate`. Redis often hands several
 * messages over in one read; one write per socket per message would cost a syscall each.
 * (uWebSockets' corking and Centrifugo's write batching do the same.)
 */
export interface Flushable {
  flush(): void;
}

export class WriteBatcher {
  readonly #dirty = new Set<Flushable>();
  #scheduled = false;

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
    for (const target of targets) target.flush();
  }
}
