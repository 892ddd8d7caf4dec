/**
 * A steady publisher, as the app's outbox relay behaves: one event at a time, in order, through
 * the one Lua script (`publishWithHistory`), and a failed publish is retried, the same event
 * with the same `id`, until Redis takes it. Each event is a `post_liked` whose `likesCount` is
 * its sequence number, so a client's order can be checked.
 *
 * A retry after a lost reply can publish an event twice (two offsets, one id): clients drop the
 * copy by id, and the ledger keeps the acknowledged position.
 */
import { Redis } from 'ioredis';
import { publishWithHistory } from '../../../websocket-server/src/broker/history-script.ts';
import type { Position } from './drill-client.ts';

export interface PublishedEvent {
  seq: number;
  id: string;
  channel: string;
  /** When the script's reply came back (ms since epoch). */
  ackedAt: number;
  position: Position | null;
  attempts: number;
  /** What the drill was doing when it was acknowledged ("before", "outage", "after"…). */
  phase: string;
}

export interface PublisherOptions {
  redisUrl: string;
  prefix: string;
  channel: string;
  postId: string;
  /** Events per second (default 40). */
  rate?: number;
  /** Distinguishes this run's event ids. */
  idPrefix: string;
  /** Delay between retries of a failed publish (ms). */
  retryMs?: number;
}

export class SteadyPublisher {
  readonly published: PublishedEvent[] = [];
  failedAttempts = 0;
  /** Events given up by close() while Redis was unreachable (never acknowledged). */
  abandoned = 0;
  phase = 'before';
  readonly #redis: Redis;
  readonly #options: Required<PublisherOptions>;
  #running = false;
  #loop: Promise<void> = Promise.resolve();
  #seq = 0;
  #closing = false;

  constructor(options: PublisherOptions) {
    this.#options = { rate: 40, retryMs: 100, ...options };
    // No offline queue and no retries inside ioredis: a publish while Redis is away fails at once
    // and this class retries it, as the outbox would.
    this.#redis = new Redis(options.redisUrl, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => 100,
      connectionName: 'drill-publisher',
    });
    this.#redis.on('error', () => {});
  }

  async ready(): Promise<void> {
    if (this.#redis.status === 'ready') return;
    await new Promise<void>((resolve) => this.#redis.once('ready', () => resolve()));
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
  }

  /** Stops after the event in hand is acknowledged. */
  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }

  /** Publishes `count` more events now (outside the steady loop), each retried until acknowledged. */
  async publishBurst(count: number): Promise<void> {
    for (let i = 0; i < count; i++) await this.#publishNext();
  }

  /** Stops, giving up an event that cannot be published now, and disconnects. */
  async close(): Promise<void> {
    this.#closing = true;
    await this.stop();
    this.#redis.disconnect();
  }

  get lastAcked(): PublishedEvent | undefined {
    return this.published.at(-1);
  }

  async #run(): Promise<void> {
    const interval = 1_000 / this.#options.rate;
    let next = Date.now();
    while (this.#running) {
      await this.#publishNext();
      next += interval;
      const wait = next - Date.now();
      if (wait > 0) await sleep(wait);
      else next = Date.now();
    }
  }

  async #publishNext(): Promise<void> {
    const seq = ++this.#seq;
    const { channel, postId, idPrefix, prefix } = this.#options;
    const id = `${idPrefix}-${seq}`;
    const payload = JSON.stringify({ type: 'post_liked', id, data: { postId, userId: 'drill', likesCount: seq } });
    for (let attempts = 1; ; attempts++) {
      try {
        const position = await publishWithHistory(this.#redis, prefix, channel, payload);
        this.published.push({ seq, id, channel, ackedAt: Date.now(), position, attempts, phase: this.phase });
        return;
      } catch {
        this.failedAttempts++;
        // Stopped while Redis is away (a failing drill's cleanup): give the event up.
        if (!this.#running && this.#closing) {
          this.abandoned++;
          return;
        }
        await sleep(this.#options.retryMs);
      }
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
