/** The harness's side of the client processes: spawn, ask, spread connections over them. */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { CollectReply, ConnectReply, ConnectRequest, Target, WorkerReply, WorkerRequest } from './protocol.ts';

const WORKER = fileURLToPath(new URL('./client-worker.ts', import.meta.url));

export class Worker {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve: (reply: WorkerReply) => void; reject: (error: Error) => void }>();
  #nextId = 1;
  readonly ready: Promise<void>;

  constructor(readonly index: number) {
    this.#child = fork(WORKER, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.ready = new Promise((resolve, reject) => {
      this.#child.once('exit', (code) => reject(new Error(`client worker ${index} exited with ${code}`)));
      this.#child.on('message', (message: { id: number; ok: boolean; error?: string; ready?: boolean } & WorkerReply) => {
        if (message.id === 0 && message.ready) return resolve();
        const waiter = this.#pending.get(message.id);
        this.#pending.delete(message.id);
        if (!waiter) return;
        if (message.ok) waiter.resolve(message);
        else waiter.reject(new Error(`client worker ${index}: ${message.error}`));
      });
    });
    this.#child.on('exit', (code) => {
      for (const waiter of this.#pending.values()) waiter.reject(new Error(`client worker ${index} exited with ${code}`));
      this.#pending.clear();
    });
  }

  ask<T = WorkerReply>(request: WorkerRequest): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const id = this.#nextId++;
      this.#pending.set(id, { resolve: resolve as (reply: WorkerReply) => void, reject });
      this.#child.send({ id, ...request });
    });
  }

  kill(): void {
    if (this.#child.exitCode === null) this.#child.kill('SIGTERM');
  }
}

export class Fleet {
  readonly workers: Worker[];
  /** Which worker and which of its indexes each global connection j is: j → (j % W, ⌊j / W⌋). */
  #size = 0;

  constructor(count: number) {
    this.workers = Array.from({ length: count }, (_, i) => new Worker(i));
  }

  async ready(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.ready));
  }

  /** Opens `conns` (spread round-robin) from addresses `addressOf(worker)`; returns the merged reply. */
  async connect(
    target: Target,
    url: string,
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
          url,
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
