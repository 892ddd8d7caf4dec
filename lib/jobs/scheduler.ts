/**
 * Runs named jobs at an interval, one run of a job at a time across every process that runs a
 * scheduler against the same database (each outbox relay does: scripts/outbox-relay.ts).
 *
 * One run:
 *
 *   take a connection from the scheduler's own pool (1 connection)
 *   SELECT pg_try_advisory_lock(hashtextextended('fonana.job:<name>', 0))
 *     false → another process is running it: skipped, try again next interval
 *     true  → job.run() (its own transactions, through Prisma), then pg_advisory_unlock
 *
 * A session-level advisory lock, not a transaction-level one, because a run commits in batches
 * (each batch is its own transaction, so an expiry is announced as soon as it commits). If the
 * lock's connection dies mid-run, PostgreSQL releases the lock and another process may start the
 * job while this run finishes: the jobs are written to be safe under that (every write re-checks
 * its condition), the lock only keeps them from doing the same work twice in normal operation.
 *
 * Timing: each job first runs after a random delay in [0, jitter × interval] (so relays started
 * together do not all go at once), then every interval plus a random [0, jitter × interval]
 * (jitter 0.1 by default). The next run is scheduled only when a run ends: a job never overlaps
 * itself in one process either. A run that throws is logged and counted; the scheduler and the
 * process go on. `stop()` cancels the timers, asks running jobs to stop (their AbortSignal),
 * waits for them and closes the pool.
 */
import pg from 'pg';

export type JobLog = {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
};

/** What a run reports (counts of what it did), logged with the run. */
export type JobOutcome = Record<string, number>;

export interface Job {
  /** Unique per scheduler; also the advisory lock's name. [a-z0-9-]+ */
  readonly name: string;
  /** Between the end of one run and the start of the next, in ms (before jitter). */
  readonly intervalMs: number;
  /** Does the work. `signal` aborts when the scheduler stops: finish the batch in hand, return. */
  run(signal: AbortSignal): Promise<JobOutcome>;
}

export type RunResult =
  | { status: 'ran'; outcome: JobOutcome; ms: number }
  | { status: 'skipped'; reason: 'locked' | 'stopped' }
  | { status: 'failed'; error: string; ms: number };

export interface SchedulerOptions {
  databaseUrl: string;
  jobs: readonly Job[];
  log: JobLog;
  /** Fraction of the interval added at random to each delay (0.1). 0: exact intervals. */
  jitter?: number;
  /** Shown in log lines (the relay's name). */
  name?: string;
}

/** PostgreSQL application_name of the lock connection (pg_stat_activity, pg_locks). */
export const SCHEDULER_APPLICATION_NAME = 'fonana-jobs';

const NAME = /^[a-z0-9-]{1,60}$/;

export class Scheduler {
  readonly #jobs: ReadonlyMap<string, Job>;
  readonly #log: JobLog;
  readonly #jitter: number;
  readonly #name: string;
  readonly #pool: pg.Pool;
  readonly #timers = new Map<string, NodeJS.Timeout>();
  readonly #running = new Map<string, Promise<RunResult>>();
  readonly #abort = new AbortController();
  #started = false;
  #stopped: Promise<void> | undefined;
  /** Per job: runs, skips (lock held elsewhere) and failures since start. */
  readonly counts: Record<string, { ran: number; skipped: number; failed: number }> = {};

  constructor(options: SchedulerOptions) {
    const jobs = new Map<string, Job>();
    for (const job of options.jobs) {
      if (!NAME.test(job.name)) throw new Error(`job name ${JSON.stringify(job.name)} must match ${NAME}`);
      if (jobs.has(job.name)) throw new Error(`two jobs named ${job.name}`);
      if (!Number.isFinite(job.intervalMs) || job.intervalMs <= 0) throw new Error(`job ${job.name}: intervalMs must be positive`);
      jobs.set(job.name, job);
      this.counts[job.name] = { ran: 0, skipped: 0, failed: 0 };
    }
    const jitter = options.jitter ?? 0.1;
    if (!(jitter >= 0 && jitter <= 1)) throw new Error('jitter must be within 0..1');
    this.#jobs = jobs;
    this.#log = options.log;
    this.#jitter = jitter;
    this.#name = options.name ?? `scheduler:${process.pid}`;
    // One connection: runs of different jobs take turns for the lock query only; the jobs' own
    // work goes through their Prisma client.
    this.#pool = new pg.Pool({ connectionString: options.databaseUrl, max: 1, idleTimeoutMillis: 10_000, application_name: SCHEDULER_APPLICATION_NAME });
    this.#pool.on('error', (error) => this.#log.warn('job scheduler: idle database connection failed', { scheduler: this.#name, error: error.message }));
  }

  /** Arms every job's first run. Idempotent. */
  start(): void {
    if (this.#started || this.#abort.signal.aborted) return;
    this.#started = true;
    for (const job of this.#jobs.values()) this.#schedule(job, Math.random() * this.#jitter * job.intervalMs);
    this.#log.info('job scheduler started', { scheduler: this.#name, jobs: [...this.#jobs.values()].map((j) => ({ name: j.name, intervalMs: j.intervalMs })) });
  }

  /**
   * Runs `name` once now, under the lock (what a timer does; tests and operators call it). A run
   * already in progress in this process is joined rather than started twice.
   */
  runNow(name: string): Promise<RunResult> {
    const job = this.#jobs.get(name);
    if (!job) return Promise.reject(new Error(`no job named ${name}`));
    const inFlight = this.#running.get(name);
    if (inFlight) return inFlight;
    const run = this.#runLocked(job).finally(() => this.#running.delete(name));
    this.#running.set(name, run);
    return run;
  }

  /** Cancels the timers, lets running jobs finish their batch, closes the pool. Idempotent. */
  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      this.#abort.abort();
      for (const timer of this.#timers.values()) clearTimeout(timer);
      this.#timers.clear();
      await Promise.allSettled([...this.#running.values()]);
      await this.#pool.end().catch(() => {});
    })();
    return this.#stopped;
  }

  #schedule(job: Job, delayMs: number): void {
    if (this.#abort.signal.aborted) return;
    const timer = setTimeout(() => {
      this.#timers.delete(job.name);
      void this.runNow(job.name).finally(() => this.#schedule(job, job.intervalMs * (1 + Math.random() * this.#jitter)));
    }, delayMs);
    timer.unref();
    this.#timers.set(job.name, timer);
  }

  async #runLocked(job: Job): Promise<RunResult> {
    if (this.#abort.signal.aborted) return { status: 'skipped', reason: 'stopped' };
    const started = performance.now();
    const counts = this.counts[job.name]!;
    let client: pg.PoolClient | undefined;
    let broken: Error | undefined;
    try {
      client = await this.#pool.connect();
      const lockName = `fonana.job:${job.name}`;
      const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked', [lockName]).catch((error: Error) => {
        broken = error;
        throw error;
      });
      if (!rows[0]?.locked) {
        counts.skipped += 1;
        this.#log.debug('job skipped: running in another process', { scheduler: this.#name, job: job.name });
        return { status: 'skipped', reason: 'locked' };
      }
      try {
        const outcome = await job.run(this.#abort.signal);
        const ms = performance.now() - started;
        counts.ran += 1;
        this.#log[Object.values(outcome).some((n) => n > 0) ? 'info' : 'debug']('job ran', { scheduler: this.#name, job: job.name, ms: Math.round(ms), ...outcome });
        return { status: 'ran', outcome, ms };
      } finally {
        await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [lockName]).catch((error: Error) => {
          // The connection is gone, and the lock with it; do not hand this connection out again.
          broken = error;
        });
      }
    } catch (error) {
      const ms = performance.now() - started;
      counts.failed += 1;
      const message = error instanceof Error ? error.message : String(error);
      this.#log.error('job failed', { scheduler: this.#name, job: job.name, ms: Math.round(ms), error: message });
      return { status: 'failed', error: message, ms };
    } finally {
      client?.release(broken);
    }
  }
}
