/**
 * The harness's side of bench/scale's client processes (as bench/compare/workers.ts): fork them,
 * ask over IPC, spread clients over them round-robin, merge what they answer. Client j lives in
 * worker j % W at index ⌊j / W⌋.
 */
import { fileURLToPath } from 'node:url';
import { IpcWorker } from '../support/ipc-worker.ts';
import type { ClientSpec, CollectReply, ConnectReply, CountReply, WorkerRequest } from './protocol.ts';

const WORKER = fileURLToPath(new URL('./client-worker.ts', import.meta.url));
// 40,000 clients' state in 4 processes: more heap than node's default per process.
const EXEC_ARGV = ['--import', 'tsx', '--max-old-space-size=4096'];

type Worker = IpcWorker<WorkerRequest>;


export interface Collected {
  /** accepted[slot][j] for global client j. */
  accepted: number[][];
  closes: number[];
  lastCloseAt: number[];
  readyAgainAt: number[];
  failedAttempts: number[];
  duplicates: number[];
  gaps: number[];
  recovered: number;
  notRecovered: number;
  closeCodes: Record<string, number>;
  /** Sparse histograms of every worker, to merge. */
  live: Record<string, number[][][]>;
  replayed: number[][][];
  errors: Record<string, number>;
  stopped: number;
}

export class Fleet {
  readonly workers: Worker[];
  #size = 0;

  constructor(count: number) {
    this.workers = Array.from({ length: count }, (_, i) => new IpcWorker<WorkerRequest>(i, WORKER, EXEC_ARGV));
  }

  async ready(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.ready));
  }

  get pids(): number[] {
    return this.workers.map((worker) => worker.pid);
  }

  /** Opens `clients` (round-robin over the workers), worker w from `addressOf(w)`. */
  async connect(url: string, clients: ClientSpec[], addressOf: (worker: number) => string, concurrency: number): Promise<ConnectReply & { readyMsPerWorker: number[][][] }> {
    const W = this.workers.length;
    const replies = await Promise.all(
      this.workers.map((worker, w) =>
        worker.ask<ConnectReply>({ cmd: 'connect', url, localAddress: addressOf(w), clients: clients.filter((_, j) => j % W === w), concurrency: Math.max(1, Math.round(concurrency / W)) }),
      ),
    );
    this.#size = clients.length;
    const errors: Record<string, number> = {};
    for (const reply of replies) for (const [reason, n] of Object.entries(reply.errors)) errors[reason] = (errors[reason] ?? 0) + n;
    return {
      opened: replies.reduce((sum, r) => sum + r.opened, 0),
      failed: replies.reduce((sum, r) => sum + r.failed, 0),
      errors,
      seconds: Math.max(...replies.map((r) => r.seconds)),
      readyMs: [],
      readyMsPerWorker: replies.map((r) => r.readyMs),
    };
  }

  async phase(name: string): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.ask({ cmd: 'phase', name })));
  }

  async count(): Promise<{ accepted: number[]; ready: number }> {
    const replies = await Promise.all(this.workers.map((worker) => worker.ask<CountReply>({ cmd: 'count' })));
    const accepted: number[] = [];
    for (const reply of replies) reply.accepted.forEach((n, slot) => (accepted[slot] = (accepted[slot] ?? 0) + n));
    return { accepted, ready: replies.reduce((sum, r) => sum + r.ready, 0) };
  }

  async collect(): Promise<Collected> {
    const W = this.workers.length;
    const replies = await Promise.all(this.workers.map((worker) => worker.ask<CollectReply>({ cmd: 'collect' })));
    const perClient = (pick: (r: CollectReply) => number[]) => Array.from({ length: this.#size }, (_, j) => pick(replies[j % W]!)[Math.floor(j / W)] ?? 0);
    const slots = Math.max(0, ...replies.map((r) => r.accepted.length));
    const sumCodes = (pick: (r: CollectReply) => Record<string, number>) => {
      const out: Record<string, number> = {};
      for (const reply of replies) for (const [key, n] of Object.entries(pick(reply))) out[key] = (out[key] ?? 0) + n;
      return out;
    };
    const live: Record<string, number[][][]> = {};
    for (const reply of replies) for (const [name, pairs] of Object.entries(reply.live)) (live[name] ??= []).push(pairs);
    return {
      accepted: Array.from({ length: slots }, (_, slot) => perClient((r) => r.accepted[slot] ?? [])),
      closes: perClient((r) => r.closes),
      lastCloseAt: perClient((r) => r.lastCloseAt),
      readyAgainAt: perClient((r) => r.readyAgainAt),
      failedAttempts: perClient((r) => r.failedAttempts),
      duplicates: Array.from({ length: slots }, (_, slot) => replies.reduce((sum, r) => sum + (r.duplicates[slot] ?? 0), 0)),
      gaps: Array.from({ length: slots }, (_, slot) => replies.reduce((sum, r) => sum + (r.gaps[slot] ?? 0), 0)),
      recovered: replies.reduce((sum, r) => sum + r.recovered, 0),
      notRecovered: replies.reduce((sum, r) => sum + r.notRecovered, 0),
      closeCodes: sumCodes((r) => r.closeCodes),
      live,
      replayed: replies.map((r) => r.replayed),
      errors: sumCodes((r) => r.errors),
      stopped: replies.reduce((sum, r) => sum + r.stopped, 0),
    };
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.ask({ cmd: 'close' }).catch(() => {})));
  }

  kill(): void {
    for (const worker of this.workers) worker.kill();
  }
}
