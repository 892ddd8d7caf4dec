/**
 * Every `ttlMs / 3` (2 s by default) this node writes a small snapshot of itself to the shared
 * stats store (ops/stats-store.ts): who it is, what it holds now, its totals since start, the
 * rates of those totals over a rolling window, memory and event-loop lag. `GET /stats` on any
 * node lists every live node's snapshot; a node that stops writing drops out `ttlMs` after its
 * last write (NODE_STATS_TTL_MS, 6 s by default), one that shuts down removes itself at once.
 *
 * Rates are computed here, per node, over the last RATE_WINDOW_MS of samples: a reader that
 * polls at any pace, or several readers at once, sees the same events per second, and a node
 * restart (totals back to 0) never shows as a negative rate.
 *
 * The totals are read from the node's Prometheus counters (metrics.ts), so the admin page and
 * Grafana can never disagree about what was delivered.
 */
import { hostname } from 'node:os';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { Counter } from 'prom-client';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { NodeStatsSnapshot, NodeStatsStore } from './stats-store.ts';

/** Rates cover about this much of the recent past (ms): long enough to smooth bursts. */
export const RATE_WINDOW_MS = 10_000;

/** What the server holds right now (RealtimeServer.liveCounts()). */
export interface LiveCounts {
  connections: number;
  users: number;
  channels: number;
  subscriptions: number;
}

export interface NodeStatsReporterOptions {
  store: NodeStatsStore;
  nodeId: string;
  broker: 'redis' | 'memory';
  metrics: Metrics;
  counts: () => LiveCounts;
  /** How long a snapshot counts; written every third of it. */
  ttlMs: number;
  logger: Logger;
}

interface Sample {
  at: number;
  delivered: number;
  received: number;
}

/** Sum of a counter's series, those whose labels pass `keep` (all by default). */
async function total<T extends string>(counter: Counter<T>, keep: (labels: Partial<Record<T, string | number>>) => boolean = () => true): Promise<number> {
  const { values } = await counter.get();
  return values.reduce((sum, { value, labels }) => (keep(labels) ? sum + value : sum), 0);
}

/** Events per second between the oldest and newest sample (0 with fewer than two). */
export function ratePerSecond(samples: readonly Sample[], field: 'delivered' | 'received'): number {
  const first = samples[0];
  const last = samples[samples.length - 1];
  if (!first || !last || last.at <= first.at) return 0;
  return Math.max(0, (last[field] - first[field]) / ((last.at - first.at) / 1000));
}

const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

export class NodeStatsReporter {
  readonly #options: NodeStatsReporterOptions;
  readonly #startedAt = new Date().toISOString();
  readonly #samples: Sample[] = [];
  readonly #lag: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> | undefined;
  #failing = false;
  #stopped = false;

  constructor(options: NodeStatsReporterOptions) {
    this.#options = options;
  }

  get intervalMs(): number {
    return Math.max(100, Math.floor(this.#options.ttlMs / 3));
  }

  /** Writes a first snapshot now, then one every interval. */
  start(): void {
    if (this.#timer || this.#stopped) return;
    this.#lag.enable();
    void this.#tick();
    this.#timer = setInterval(() => void this.#tick(), this.intervalMs);
    this.#timer.unref();
  }

  /** The snapshot as it would be written now (also advances the rate window). */
  async snapshot(): Promise<NodeStatsSnapshot> {
    const { metrics, counts, nodeId, broker } = this.#options;
    const [delivered, received, publishFailures, invalid, slow] = await Promise.all([
      total(metrics.messagesSent),
      total(metrics.eventsReceived),
      total(metrics.published, (labels) => Number(labels.status) >= 500),
      total(metrics.eventsReceived, (labels) => labels.outcome === 'invalid'),
      total(metrics.slowConsumers),
    ]);
    const now = Date.now();
    this.#samples.push({ at: now, delivered, received });
    // Keep one sample at or before the window's start, so the window spans RATE_WINDOW_MS.
    while (this.#samples.length > 2 && this.#samples[1]!.at <= now - RATE_WINDOW_MS) this.#samples.shift();
    const window = this.#samples;
    const { rss, heapUsed } = process.memoryUsage();
    const lag = this.#lag;
    // The histogram is in ns; NaN before its first sample.
    const ms = (ns: number) => (Number.isFinite(ns) ? round(ns / 1e6) : 0);
    const eventLoopLagMs = { mean: ms(lag.mean), p99: ms(lag.percentile(99)), max: ms(lag.max) };
    lag.reset();
    return {
      nodeId,
      pid: process.pid,
      host: hostname(),
      startedAt: this.#startedAt,
      writtenAt: new Date(now).toISOString(),
      broker,
      ...counts(),
      eventsDeliveredTotal: delivered,
      eventsReceivedTotal: received,
      deliveredPerSecond: round(ratePerSecond(window, 'delivered')),
      receivedPerSecond: round(ratePerSecond(window, 'received')),
      rateWindowSeconds: round((window[window.length - 1]!.at - window[0]!.at) / 1000, 1),
      publishFailuresTotal: publishFailures,
      invalidEventsTotal: invalid,
      slowConsumerClosesTotal: slow,
      memory: { rssBytes: rss, heapUsedBytes: heapUsed },
      eventLoopLagMs,
    };
  }

  async #tick(): Promise<void> {
    // A write still in flight (Redis slow): skip this one rather than pile them up.
    if (this.#writing || this.#stopped) return;
    this.#writing = (async () => {
      const { store, ttlMs, logger } = this.#options;
      try {
        await store.write(await this.snapshot(), ttlMs);
        if (this.#failing) logger.info('node stats written again');
        this.#failing = false;
      } catch (error) {
        // Once per outage, not every 2 s: /health already says Redis is down.
        if (!this.#failing) logger.warn('node stats not written', { error: (error as Error).message });
        this.#failing = true;
      }
    })().finally(() => {
      this.#writing = undefined;
    });
    await this.#writing;
  }

  /** Stops writing and removes this node from the store (bounded by the caller). Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#lag.disable();
    await this.#writing;
    await this.#options.store.remove(this.#options.nodeId).catch((error: Error) => {
      this.#options.logger.warn('node stats not removed; they expire by themselves', { error: error.message });
    });
  }
}
