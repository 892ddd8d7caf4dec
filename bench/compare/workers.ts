/** The harness's side of the client processes: spawn, ask, spread connections over them. */
import { fileURLToPath } from 'node:url';
import { IpcWorker } from '../support/ipc-worker.ts';
import type { CollectReply, ConnectReply, ConnectRequest, Target, WorkerRequest } from './protocol.ts';

const WORKER = fileURLToPath(new URL('./client-worker.ts', import.meta.url));

export type Worker = IpcWorker<WorkerRequest>;

export class Fleet {
  readonly workers: Worker[];
  /** Which worker and which of its indexes each global connection j is: j → (j % W, ⌊j / W⌋). */
  #size = 0;

  constructor(count: number) {
    this.workers = Array.from({ length: count }, (_, i) => new IpcWorker<WorkerRequest>(i, WORKER));
  }

  async ready(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.ready));
  }

  /**
   * Opens `conns` (spread round-robin) from addresses `addressOf(worker)`, to `url` or, when it
   * is a function, to the URL it gives each worker; returns the merged reply.
   */
  async connect(
    target: Target,
    url: string | ((worker: number) => string),
    conns: ConnectRequest['conns'],
    event: string,
    addressOf: (worker: number) => string,
    options: { ratePerSecond?: number; concurrency?: number } = {},
  ): Promise<ConnectReply> {
    const W = this.workers.length;
    const replies = await Promise.all(
      this.workers.map((worker, w) =>
        worker.ask<ConnectReply>({
          cmd: 'connect',
          target,
          url: typeof url === 'string' ? url : url(w),
          localAddress: addressOf(w),
          conns: conns.filter((_, j) => j % W === w),
          event,
          concurrency: options.concurrency ?? 100,
          ...(options.ratePerSecond ? { ratePerSecond: options.ratePerSecond / W } : {}),
        }),
      ),
    );
    this.#size = conns.length;
    const errors: Record<string, number> = {};
    for (const reply of replies) for (const [reason, n] of Object.entries(reply.errors)) errors[reason] = (errors[reason] ?? 0) + n;
    return {
      opened: replies.reduce((sum, r) => sum + r.opened, 0),
      failed: replies.reduce((sum, r) => sum + r.failed, 0),
      errors,
      seconds: Math.max(...replies.map((r) => r.seconds)),
    };
  }

  reset(slowMs?: number): Promise<unknown> {
    return Promise.all(this.workers.map((worker) => worker.ask({ cmd: 'reset', ...(slowMs === undefined ? {} : { slowMs }) })));
  }

  async total(): Promise<{ total: number; dropped: number }> {
    const replies = await Promise.all(this.workers.map((worker) => worker.ask<{ total: number; dropped: number }>({ cmd: 'count' })));
    return { total: replies.reduce((s, r) => s + r.total, 0), dropped: replies.reduce((s, r) => s + r.dropped, 0) };
  }

  /** Waits until `expected` deliveries arrived in all, or nothing arrived for `quietMs`; resolves to the total. */
  async awaitTotal(expected: number, quietMs = 15_000): Promise<number> {
    let last = -1;
    let lastChange = performance.now();
    for (;;) {
      const { total } = await this.total();
      if (total >= expected) return total;
      if (total !== last) {
        last = total;
        lastChange = performance.now();
      } else if (performance.now() - lastChange > quietMs) return total;
      await new Promise((resolve) => setTimeout(resolve, expected - total < 1000 ? 5 : 50));
    }
  }

  /** Per global connection counts (in the order given to connect), and everything else merged. */
  async collect(): Promise<{ counts: number[]; histograms: number[][][]; slow: Array<[number, number]>; pings: number[]; dropped: number }> {
    const W = this.workers.length;
    const replies = await Promise.all(this.workers.map((worker) => worker.ask<CollectReply>({ cmd: 'collect' })));
    const counts = Array.from({ length: this.#size }, (_, j) => replies[j % W]!.counts[Math.floor(j / W)] ?? 0);
    return {
      counts,
      histograms: replies.map((r) => r.histogram),
      slow: replies.flatMap((r) => r.slow),
      pings: replies.flatMap((r) => r.pings),
      dropped: replies.reduce((s, r) => s + r.dropped, 0),
    };
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.ask({ cmd: 'close' })));
    this.#size = 0;
  }

  kill(): void {
    for (const worker of this.workers) worker.kill();
  }
}
