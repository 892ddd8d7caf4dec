/**
 * The job scheduler (lib/jobs/scheduler.ts) against the run's real PostgreSQL: two schedulers
 * (as two relay processes would have) never run one job at the same time, the advisory lock is
 * visible in pg_locks while a run holds it and gone after, a failing run is logged and the
 * scheduler goes on, and stop() waits for the run in flight and ends the timers.
 */
import { expect } from 'chai';
import pg from 'pg';
import { Scheduler, SCHEDULER_APPLICATION_NAME, type Job, type JobLog } from '../../../lib/jobs/scheduler.ts';
import { testDatabaseUrl } from '../../support/env.ts';

function recordingLog() {
  const lines: Array<{ level: string; msg: string; fields: Record<string, unknown> }> = [];
  const at = (level: string) => (msg: string, fields: Record<string, unknown> = {}) => void lines.push({ level, msg, fields });
  const log: JobLog = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return { log, lines };
}

/** Every gate of the current test, opened in afterEach so a failed test leaves no run hanging. */
const gates: Array<() => void> = [];

/** A promise and its resolve, to hold a job inside its run until the test lets it go. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  gates.push(open);
  return { open, opened };
}

function until(check: () => boolean, ms: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + ms;
    const tick = () => {
      if (check()) return resolve();
      if (Date.now() > deadline) return reject(new Error(`${what}: not within ${ms} ms`));
      setTimeout(tick, 10);
    };
    tick();
  });
}

describe('Scheduler (lib/jobs/scheduler.ts)', function () {
  this.timeout(20_000);
  const schedulers: Scheduler[] = [];
  let sql: pg.Pool;
  const make = (jobs: Job[], log = recordingLog().log, jitter = 0) => {
    const scheduler = new Scheduler({ databaseUrl: testDatabaseUrl(), jobs, log, jitter });
    schedulers.push(scheduler);
    return scheduler;
  };

  before(() => {
    sql = new pg.Pool({ connectionString: testDatabaseUrl(), max: 1, idleTimeoutMillis: 1_000 });
  });
  afterEach(async () => {
    for (const open of gates.splice(0)) open();
    await Promise.all(schedulers.splice(0).map((s) => s.stop()));
  });
  after(async () => {
    await sql.end();
  });

  const advisoryLocksHeld = async () =>
    Number(
      (
        await sql.query<{ n: string }>(
          `SELECT count(*) AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
           WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = $1 AND a.datname = current_database()`,
          [SCHEDULER_APPLICATION_NAME],
        )
      ).rows[0]!.n,
    );

  describe('#runNow', () => {
    it('two schedulers never run the same job at once: the second is skipped while the first holds the lock, and runs after', async () => {
      const held = gate();
      const active: Record<string, number> = {};
      let maxLockTestActive = 0;
      let runs = 0;
      const job = (name: string, wait?: Promise<void>): Job => ({
        name,
        intervalMs: 60_000,
        async run() {
          active[name] = (active[name] ?? 0) + 1;
          if (name === 'lock-test') maxLockTestActive = Math.max(maxLockTestActive, active[name]);
          runs += 1;
          await wait;
          active[name] -= 1;
          return { runs };
        },
      });
      const first = make([job('lock-test', held.opened)]);
      const second = make([job('lock-test')]);
      const other = make([job('another-job')]);

      const running = first.runNow('lock-test');
      await until(() => active['lock-test'] === 1, 5_000, 'the first run started');
      expect(await advisoryLocksHeld(), 'the lock shows in pg_locks').to.equal(1);
      expect(await second.runNow('lock-test')).to.deep.equal({ status: 'skipped', reason: 'locked' });
      // Another job's lock is another lock: it runs meanwhile.
      expect((await other.runNow('another-job')).status).to.equal('ran');
      held.open();
      expect((await running).status).to.equal('ran');
      expect(await advisoryLocksHeld(), 'released after the run').to.equal(0);

      expect((await second.runNow('lock-test')).status, 'free again: the second one runs').to.equal('ran');
      expect(maxLockTestActive, 'never two runs of lock-test at once').to.equal(1);
      expect(second.counts['lock-test']).to.deep.equal({ ran: 1, skipped: 1, failed: 0 });
      expect(runs).to.equal(3);
    });

    it('in one process, a second runNow of a running job joins the run instead of starting another', async () => {
      const held = gate();
      let runs = 0;
      const scheduler = make([{ name: 'join-test', intervalMs: 60_000, run: async () => ((runs += 1), await held.opened, { runs }) }]);
      const a = scheduler.runNow('join-test');
      const b = scheduler.runNow('join-test');
      held.open();
      expect(await a).to.deep.equal(await b);
      expect(runs).to.equal(1);
    });
  });

  describe('timers', () => {
    it('a run that throws is logged and counted, the lock released, and the next run comes on schedule', async () => {
      const { log, lines } = recordingLog();
      let calls = 0;
      const scheduler = make(
        [
          {
            name: 'flaky',
            intervalMs: 50,
            async run() {
              calls += 1;
              if (calls === 1) throw new Error('database said no');
              return { calls };
            },
          },
        ],
        log,
      );
      scheduler.start();
      await until(() => scheduler.counts.flaky!.ran >= 2, 5_000, 'two good runs after the failure');
      expect(scheduler.counts.flaky!.failed).to.equal(1);
      const failed = lines.find((l) => l.msg === 'job failed');
      expect(failed?.level).to.equal('error');
      expect(failed?.fields).to.include({ job: 'flaky', error: 'database said no' });
      expect(await advisoryLocksHeld()).to.equal(0);
    });

    it('stop() waits for the run in flight, then no run starts again', async () => {
      const held = gate();
      let started = 0;
      let finished = 0;
      const scheduler = make([
        {
          name: 'stopping',
          intervalMs: 20,
          async run(signal) {
            started += 1;
            if (started === 2) await held.opened;
            finished += 1;
            return { aborted: signal.aborted ? 1 : 0 };
          },
        },
      ]);
      scheduler.start();
      await until(() => started === 2, 5_000, 'the second run started');
      const stopped = scheduler.stop();
      held.open();
      await stopped;
      expect(finished, 'the run in flight finished before stop() resolved').to.equal(2);
      // After stop: the scheduler refuses to run (a value, not a throw), and nothing more started.
      expect(await scheduler.runNow('stopping')).to.deep.equal({ status: 'skipped', reason: 'stopped' });
      expect(started).to.equal(2);
    });

    it('refuses bad configuration at construction', () => {
      const job = { name: 'ok', intervalMs: 1_000, run: async () => ({}) };
      expect(() => new Scheduler({ databaseUrl: testDatabaseUrl(), jobs: [job, job], log: recordingLog().log })).to.throw(/two jobs named ok/);
      expect(() => new Scheduler({ databaseUrl: testDatabaseUrl(), jobs: [{ ...job, name: 'Bad Name' }], log: recordingLog().log })).to.throw(/must match/);
      expect(() => new Scheduler({ databaseUrl: testDatabaseUrl(), jobs: [{ ...job, intervalMs: 0 }], log: recordingLog().log })).to.throw(/positive/);
    });
  });
});
