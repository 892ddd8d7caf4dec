/**
 * The outbox relay: publishes the OutboxEvent rows that API routes wrote in their transactions
 * (lib/realtime.ts), in id order, at least once. It runs as its own process
 * (scripts/outbox-relay.ts; `npm start` forks it, PM2 runs it as `fonana-outbox`), and any
 * number of relays may run against one database.
 *
 * One batch is one transaction:
 *
 *   BEGIN
 *   SELECT … FROM "OutboxEvent" WHERE unsent AND available ORDER BY id LIMIT n
 *     FOR UPDATE SKIP LOCKED          -- rows another relay holds are skipped, not waited for
 *   publish each row through the transport, in id order
 *   UPDATE … SET "sentAt" = now()    -- the published ones
 *   UPDATE … SET attempts + 1, "lastError", "availableAt" = now() + backoff   -- the rest, on a failure
 *   COMMIT
 *
 * Several relays never publish the same row twice in normal operation: a row is locked by the
 * relay that claimed it until that relay commits it as sent, and the next claim (FOR UPDATE
 * re-reads a row whose lock it waited past) no longer matches it. A relay that dies between its
 * publishes and its COMMIT leaves the rows unsent (PostgreSQL rolls the transaction back when the
 * connection drops), so another claim publishes them again: at least once, with the same event
 * id, which clients drop as a duplicate.
 *
 * When a publish fails (Redis or the WebSocket server down), the batch stops there: that row
 * and every later one of the batch are deferred with exponential backoff (0.5 s, 1 s, 2 s, …
 * capped at `maxBackoffMs`, 30 s by default), and the relay sleeps as long, ignoring wake-ups,
 * so that later events are not published before earlier ones and a dead publisher is not
 * hammered. A row the publisher refuses for good (PublishRefusedError: POST /publish answered
 * 400 or 413) is marked failed (`failedAt`) and skipped from then on; it stays for inspection.
 *
 * Between batches the relay waits for a NOTIFY on `fonana_outbox` (the table's AFTER INSERT
 * trigger, delivered at commit) on a dedicated connection, reconnected when it drops, and polls
 * every `pollIntervalMs` (5 s) anyway as a safety net: a missed notification, a relay that
 * reconnected, rows whose backoff ended. Sent rows are deleted after `retentionMs` (1 h).
 *
 * Order: each relay publishes its batches in id order. Several relays each take different
 * batches, so two events of one channel in different batches can reach the broker in either
 * order; counters carry `version` for that, and every event keeps its id.
 */
import pg from 'pg';
import { CONTROL_CHANNEL, MAX_PUBLISH_CHANNELS, type ControlMessage } from '@/websocket-server/src/protocol/index.ts';
import { log as appLog } from '../log.ts';
import { publishStats } from './stats.ts';
import { PublishRefusedError, type Transport } from './transport.ts';

/** The channel the outbox trigger notifies (see the outbox migration). */
export const OUTBOX_NOTIFY_CHANNEL = 'fonana_outbox';
/** PostgreSQL application_name of the relay's connections (pg_stat_activity). */
export const RELAY_APPLICATION_NAME = 'fonana-outbox-relay';
export const LISTENER_APPLICATION_NAME = 'fonana-outbox-listen';

export type RelayLog = Pick<typeof appLog, 'debug' | 'info' | 'warn' | 'error'>;

export interface OutboxRelayOptions {
  databaseUrl: string;
  transport: Transport;
  /** Rows claimed per transaction (100). */
  batchSize?: number;
  /** Safety-net poll between batches when no NOTIFY arrives (5 s). */
  pollIntervalMs?: number;
  /** Sent rows older than this are deleted (1 h). */
  retentionMs?: number;
  /** First retry delay after a failed publish (500 ms); doubles with each attempt. */
  baseBackoffMs?: number;
  /** Longest retry delay (30 s). */
  maxBackoffMs?: number;
  /** PostgreSQL connections for batches (2), besides the one that LISTENs. */
  poolMax?: number;
  /** Shown in the log lines of this relay. */
  name?: string;
  log?: RelayLog;
  /**
   * Drill hook (explicit, for fault tests; never set in production): runs after a batch was
   * published and before its transaction commits. Killing the process here is the crash
   * "between publish and commit"; throwing rolls the batch back the same way.
   */
  beforeCommit?: (batch: { published: string[] }) => void | Promise<void>;
}

export interface BatchOutcome {
  /** Rows this transaction claimed. */
  claimed: number;
  published: number;
  /** Rows deferred with backoff after a failed publish (that row and the rest of the batch). */
  deferred: number;
  /** Rows given up for good (refused by the publisher). */
  refused: number;
  /** Set after a failure: how long the relay waits before it claims again (ms). */
  retryInMs?: number;
}

interface ClaimedRow {
  id: string;
  channels: string[];
  type: string;
  data: unknown;
  eventId: string;
  attempts: number;
  createdMs: number;
}

const CLAIM_SQL = `
  SELECT "id"::text AS "id", "channels", "type", "data", "eventId"::text AS "eventId", "attempts",
         floor(extract(epoch FROM "createdAt") * 1000)::float8 AS "createdMs"
  FROM "OutboxEvent"
  WHERE "sentAt" IS NULL AND "failedAt" IS NULL AND "availableAt" <= now()
  ORDER BY "id"
  LIMIT $1
  FOR UPDATE SKIP LOCKED`;

const SWEEP_BATCH = 5_000;

function message(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, 1_000);
}

export class OutboxRelay {
  readonly #transport: Transport;
  readonly #pool: pg.Pool;
  readonly #databaseUrl: string;
  readonly #batchSize: number;
  readonly #pollIntervalMs: number;
  readonly #retentionMs: number;
  readonly #baseBackoffMs: number;
  readonly #maxBackoffMs: number;
  readonly #log: RelayLog;
  readonly #name: string;
  readonly #beforeCommit: OutboxRelayOptions['beforeCommit'];

  #listener: pg.Client | undefined;
  #listening = false;
  #listenerRetries = 0;
  #listenerTimer: NodeJS.Timeout | undefined;
  #stopping = false;
  #loop: Promise<void> | undefined;
  /** A NOTIFY (or a reconnect) arrived since the current batch began: claim again at once. */
  #woken = false;
  #wake: (() => void) | undefined;
  #wakeable = false;
  #lastSweep = 0;
  #failureStreak = 0;

  /** This relay's own counters (publishStats() sums every relay of the process). */
  readonly counts = { batches: 0, published: 0, deferred: 0, refused: 0, failures: 0, wakeups: 0, polls: 0, swept: 0 };

  constructor(options: OutboxRelayOptions) {
    this.#transport = options.transport;
    this.#databaseUrl = options.databaseUrl;
    this.#batchSize = options.batchSize ?? 100;
    this.#pollIntervalMs = options.pollIntervalMs ?? 5_000;
    this.#retentionMs = options.retentionMs ?? 3_600_000;
    this.#baseBackoffMs = options.baseBackoffMs ?? 500;
    this.#maxBackoffMs = options.maxBackoffMs ?? 30_000;
    this.#log = options.log ?? appLog;
    this.#name = options.name ?? 'outbox-relay';
    this.#beforeCommit = options.beforeCommit;
    // A database that does not answer fails a batch after 5 s (then backoff) instead of hanging it.
    this.#pool = new pg.Pool({
      connectionString: options.databaseUrl,
      max: options.poolMax ?? 2,
      idleTimeoutMillis: 10_000,
      connectionTimeoutMillis: 5_000,
      application_name: RELAY_APPLICATION_NAME,
    });
    // An idle pooled connection that breaks (database restarted) must not crash the process.
    this.#pool.on('error', (error) => this.#log.warn('outbox relay: idle database connection failed', { relay: this.#name, error: error.message }));
  }

  /** Whether the LISTEN connection is up (NOTIFYs wake the relay); polling goes on regardless. */
  get listening(): boolean {
    return this.#listening;
  }

  /** Starts listening and the batch loop; resolves once the first LISTEN attempt is over. */
  async start(): Promise<void> {
    if (this.#loop) return;
    await this.#connectListener();
    this.#log.info('outbox relay started', {
      relay: this.#name,
      transport: this.#transport.kind,
      listening: this.#listening,
      batchSize: this.#batchSize,
      pollIntervalMs: this.#pollIntervalMs,
    });
    this.#loop = this.#run();
  }

  /** Finishes the batch in flight, then closes the relay's connections (not the transport's). */
  async stop(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#listenerTimer);
    this.#wake?.();
    await this.#loop;
    const listener = this.#listener;
    this.#listener = undefined;
    this.#listening = false;
    await Promise.allSettled([listener?.end(), this.#pool.end()]);
  }

  /**
   * Publishes batches until nothing is left that is available now, or a publish fails; resolves
   * to the number of rows published. For scripts and tests that want the outbox empty without a
   * running loop.
   */
  async drain(): Promise<number> {
    let published = 0;
    for (;;) {
      const outcome = await this.runOnce();
      published += outcome.published;
      if (outcome.retryInMs !== undefined || outcome.claimed < this.#batchSize) return published;
    }
  }

  /** One batch: claim, publish in id order, mark, commit. Rejects when the database fails. */
  async runOnce(): Promise<BatchOutcome> {
    const client = await this.#pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const { rows } = await client.query<ClaimedRow>(CLAIM_SQL, [this.#batchSize]);
      if (rows.length === 0) {
        await client.query('COMMIT');
        return { claimed: 0, published: 0, deferred: 0, refused: 0 };
      }
      const published: string[] = [];
      const refused: Array<{ id: string; error: string }> = [];
      let failure: { error: string; rows: ClaimedRow[] } | undefined;
      for (const [index, row] of rows.entries()) {
        try {
          await this.#publish(row);
          published.push(row.id);
        } catch (error) {
          if (error instanceof PublishRefusedError) {
            refused.push({ id: row.id, error: message(error) });
            continue;
          }
          failure = { error: message(error), rows: rows.slice(index) };
          break;
        }
      }
      await this.#beforeCommit?.({ published });
      if (published.length > 0) {
        await client.query(`UPDATE "OutboxEvent" SET "sentAt" = now(), "attempts" = "attempts" + 1, "lastError" = NULL WHERE "id" = ANY($1::bigint[])`, [published]);
      }
      for (const { id, error } of refused) {
        await client.query(`UPDATE "OutboxEvent" SET "failedAt" = now(), "attempts" = "attempts" + 1, "lastError" = $2 WHERE "id" = $1::bigint`, [id, error]);
      }
      let retryInMs: number | undefined;
      if (failure) {
        retryInMs = this.#backoff(failure.rows[0]!.attempts + 1);
        await client.query(
          `UPDATE "OutboxEvent" SET "attempts" = "attempts" + 1, "lastError" = $2,
             "availableAt" = clock_timestamp() + $3::int * interval '1 millisecond'
           WHERE "id" = ANY($1::bigint[])`,
          [failure.rows.map((r) => r.id), failure.error, retryInMs],
        );
      }
      await client.query('COMMIT');
      this.#account(rows, published.length, refused, failure, retryInMs);
      return {
        claimed: rows.length,
        published: published.length,
        deferred: failure?.rows.length ?? 0,
        refused: refused.length,
        ...(retryInMs === undefined ? {} : { retryInMs }),
      };
    } catch (error) {
      broken = error as Error;
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      // A connection that failed mid-transaction is not handed out again.
      client.release(broken);
    }
  }

  async #publish(row: ClaimedRow): Promise<void> {
    if (row.channels.length === 1 && row.channels[0] === CONTROL_CHANNEL) {
      await this.#transport.sendControl(row.data as ControlMessage);
      return;
    }
    const payload = { type: row.type, data: row.data, id: row.eventId, ts: row.createdMs };
    for (let i = 0; i < row.channels.length; i += MAX_PUBLISH_CHANNELS) {
      await this.#transport.send(row.channels.slice(i, i + MAX_PUBLISH_CHANNELS), payload);
    }
  }

  #account(
    rows: ClaimedRow[],
    published: number,
    refused: Array<{ id: string; error: string }>,
    failure: { error: string; rows: ClaimedRow[] } | undefined,
    retryInMs: number | undefined,
  ): void {
    const stats = publishStats();
    this.counts.batches += 1;
    this.counts.published += published;
    stats.published += published;
    this.counts.refused += refused.length;
    stats.refused += refused.length;
    for (const { id, error } of refused) {
      const row = rows.find((r) => r.id === id);
      this.#log.error('outbox relay: the publisher refused an event for good; it will not be retried', {
        relay: this.#name,
        outboxId: id,
        type: row?.type,
        channel: row?.channels[0],
        error,
      });
    }
    if (failure) {
      const head = failure.rows[0]!;
      this.counts.failures += 1;
      this.counts.deferred += failure.rows.length;
      stats.failed += 1;
      stats.lastFailure = { at: new Date().toISOString(), channel: head.channels[0] ?? '', type: head.type, error: failure.error };
      this.#failureStreak += 1;
      this.#log.warn('outbox relay: publish failed; retrying with backoff', {
        relay: this.#name,
        transport: this.#transport.kind,
        outboxId: head.id,
        type: head.type,
        deferred: failure.rows.length,
        attempts: head.attempts + 1,
        retryInMs,
        error: failure.error,
      });
    } else if (this.#failureStreak > 0) {
      this.#log.info('outbox relay: publishing again', { relay: this.#name, failedAttempts: this.#failureStreak });
      this.#failureStreak = 0;
    }
    if (published > 0) this.#log.debug('outbox relay: published', { relay: this.#name, rows: published, lastId: rows.at(-1)?.id });
  }

  /** Exponential backoff with equal jitter: between half and all of min(max, base·2^(n−1)). */
  #backoff(attempts: number): number {
    const full = Math.min(this.#maxBackoffMs, this.#baseBackoffMs * 2 ** Math.min(Math.max(attempts - 1, 0), 30));
    return Math.round(full / 2 + (Math.random() * full) / 2);
  }

  async #run(): Promise<void> {
    let databaseFailures = 0;
    while (!this.#stopping) {
      this.#woken = false;
      let outcome: BatchOutcome;
      try {
        outcome = await this.runOnce();
        databaseFailures = 0;
      } catch (error) {
        databaseFailures += 1;
        const retryInMs = this.#backoff(databaseFailures);
        this.#log.warn('outbox relay: the database failed; retrying', { relay: this.#name, error: message(error), retryInMs });
        outcome = { claimed: 0, published: 0, deferred: 0, refused: 0, retryInMs };
      }
      await this.#sweep();
      if (this.#stopping) break;
      if (outcome.retryInMs !== undefined) {
        // Wake-ups are ignored: later rows must not overtake the deferred ones.
        await this.#sleep(outcome.retryInMs, false);
        continue;
      }
      if (outcome.claimed === this.#batchSize || this.#woken) continue;
      const woken = await this.#sleep(this.#pollIntervalMs, true);
      if (woken) this.counts.wakeups += 1;
      else this.counts.polls += 1;
    }
  }

  /** Resolves true when woken (NOTIFY, stop), false when the time ran out. */
  #sleep(ms: number, wakeable: boolean): Promise<boolean> {
    if (this.#stopping) return Promise.resolve(true);
    if (wakeable && this.#woken) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        resolve(false);
      }, ms);
      this.#wakeable = wakeable;
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve(true);
      };
    });
  }

  #notified(): void {
    this.#woken = true;
    if (this.#wakeable || this.#stopping) this.#wake?.();
  }

  /** Deletes sent rows past the retention, at most once a minute (or per retention, if shorter). */
  async #sweep(): Promise<void> {
    const now = Date.now();
    if (now - this.#lastSweep < Math.min(60_000, this.#retentionMs)) return;
    this.#lastSweep = now;
    try {
      for (;;) {
        const { rowCount } = await this.#pool.query(
          `DELETE FROM "OutboxEvent" WHERE "id" IN (
             SELECT "id" FROM "OutboxEvent" WHERE "sentAt" < now() - $1::int * interval '1 millisecond' LIMIT ${SWEEP_BATCH})`,
          [this.#retentionMs],
        );
        this.counts.swept += rowCount ?? 0;
        if ((rowCount ?? 0) < SWEEP_BATCH) break;
      }
    } catch (error) {
      this.#log.warn('outbox relay: deleting sent rows failed', { relay: this.#name, error: message(error) });
    }
  }

  async #connectListener(): Promise<void> {
    if (this.#stopping) return;
    const client = new pg.Client({
      connectionString: this.#databaseUrl,
      keepAlive: true,
      connectionTimeoutMillis: 5_000,
      application_name: LISTENER_APPLICATION_NAME,
    });
    const lost = (why: string) => {
      if (this.#listener !== client) return;
      this.#listener = undefined;
      this.#listening = false;
      client.end().catch(() => {});
      if (this.#stopping) return;
      const delay = Math.min(30_000, 1_000 * 2 ** Math.min(this.#listenerRetries++, 5));
      this.#log.warn('outbox relay: LISTEN connection lost; polling until it is back', { relay: this.#name, why, retryInMs: delay });
      this.#listenerTimer = setTimeout(() => void this.#connectListener(), delay);
    };
    client.on('error', (error) => lost(error.message));
    client.on('end', () => lost('connection ended'));
    client.on('notification', (notification) => {
      if (notification.channel === OUTBOX_NOTIFY_CHANNEL) this.#notified();
    });
    this.#listener = client;
    try {
      await client.connect();
      await client.query(`LISTEN ${OUTBOX_NOTIFY_CHANNEL}`);
      if (this.#listener !== client) {
        // Stopped (or lost) while connecting.
        await client.end().catch(() => {});
        return;
      }
      const reconnected = this.#listenerRetries > 0;
      this.#listening = true;
      this.#listenerRetries = 0;
      // Whatever was committed while nobody listened: look now rather than at the next poll.
      if (reconnected) {
        this.#log.info('outbox relay: listening again', { relay: this.#name });
        this.#notified();
      }
    } catch (error) {
      lost(message(error));
    }
  }
}
