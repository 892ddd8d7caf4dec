/**
 * A forked client process of a benchmark, asked over IPC: each request carries an id, the child
 * answers `{id, ok, …}` (or `{id: 0, ready: true}` once it is listening), and a child that exits
 * fails every request still waiting. bench/compare and bench/scale each drive a fleet of these.
 */
import { fork, type ChildProcess } from 'node:child_process';

export type IpcReply = Record<string, unknown>;

export class IpcWorker<Request extends object> {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve: (reply: IpcReply) => void; reject: (error: Error) => void }>();
  #nextId = 1;
  readonly ready: Promise<void>;

  constructor(readonly index: number, script: string, execArgv: readonly string[] = ['--import', 'tsx']) {
    this.#child = fork(script, [], { execArgv: [...execArgv], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.ready = new Promise((resolve, reject) => {
      this.#child.once('exit', (code) => reject(new Error(`client worker ${index} exited with ${code}`)));
      this.#child.on('message', (message: { id: number; ok: boolean; error?: string; ready?: boolean } & IpcReply) => {
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

  get pid(): number {
    return this.#child.pid ?? 0;
  }

  ask<T = IpcReply>(request: Request): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const id = this.#nextId++;
      this.#pending.set(id, { resolve: resolve as (reply: IpcReply) => void, reject });
      this.#child.send({ id, ...request });
    });
  }

  kill(): void {
    if (this.#child.exitCode === null) this.#child.kill('SIGTERM');
  }
}
