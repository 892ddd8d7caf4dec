/**
 * In-process broker: the single-machine default when REDIS_URL is not set. Delivery is
 * asynchronous (a microtask), as it is through Redis, so callers never depend on a publish
 * having reached subscribers before `publish` returns.
 */
import type { StreamPosition } from '../protocol/index.ts';
import type { Broker, BrokerHealth, BrokerMessageHandler, HistorySlice, PublishOptions } from './broker.ts';
import { historyPolicyOf, newEpoch } from './history-script.ts';

type ChannelHistory = { epoch: string; offset: number; events: Array<{ offset: number; payload: string }>; expiresAt: number };

/**
 * History as the Redis script keeps it, in memory: per channel an offset, an epoch chosen when
 * the channel is first seen (so a restarted process has new epochs), and the last `size` events
 * for `ttlSeconds` after the last publish.
 */
export class MemoryBroker implements Broker {
  readonly kind = 'memory' as const;
  readonly #channels = new Set<string>();
  readonly #histories = new Map<string, ChannelHistory>();
  #handler: BrokerMessageHandler = () => {};
  #closed = false;

  onMessage(handler: BrokerMessageHandler): void {
    this.#handler = handler;
  }

  async subscribe(channel: string): Promise<void> {
    this.#channels.add(channel);
  }

  async unsubscribe(channel: string): Promise<void> {
    this.#channels.delete(channel);
  }

  async publish(channel: string, payload: string, options: PublishOptions = {}): Promise<StreamPosition | null> {
    if (this.#closed) throw new Error('broker is closed');
    // Transient: delivered as it is, no offset, not kept.
    const policy = options.transient ? null : historyPolicyOf(channel);
    let body = payload;
    let position: StreamPosition | null = null;
    if (policy) {
      if (!payload.startsWith('{') || !payload.endsWith('}')) throw new Error('payload must be a JSON object');
      const history = this.#history(channel, policy.ttlSeconds);
      const offset = ++history.offset;
      const head = `{"offset":${offset},"epoch":"${history.epoch}"`;
      body = payload === '{}' ? `${head}}` : `${head},${payload.slice(1)}`;
      history.events.push({ offset, payload: body });
      if (history.events.length > policy.size) history.events.splice(0, history.events.length - policy.size);
      position = { offset, epoch: history.epoch };
    }
    if (this.#channels.has(channel)) {
      queueMicrotask(() => {
        if (this.#channels.has(channel)) this.#handler(channel, body);
      });
    }
    return position;
  }

  async history(channel: string, since: number | null, limit: number): Promise<HistorySlice> {
    const policy = historyPolicyOf(channel);
    if (!policy) throw new Error(`channel ${channel} has no history`);
    const history = this.#history(channel, policy.ttlSeconds, false);
    const events = since === null ? [] : history.events.filter((event) => event.offset > since).slice(0, limit);
    return { position: { offset: history.offset, epoch: history.epoch }, events };
  }

  onResubscribed(): void {
    // An in-process broker never loses its subscriptions.
  }

  #history(channel: string, ttlSeconds: number, touch = true): ChannelHistory {
    const now = Date.now();
    let history = this.#histories.get(channel);
    if (!history || history.expiresAt <= now) {
      history = { epoch: newEpoch(), offset: 0, events: [], expiresAt: now + ttlSeconds * 1000 };
      this.#histories.set(channel, history);
      this.#sweep(now);
    }
    if (touch) history.expiresAt = now + ttlSeconds * 1000;
    return history;
  }

  /** Expired histories go when new ones arrive, so memory follows the live channels. */
  #sweep(now: number): void {
    if (this.#histories.size % 1024 !== 0) return;
    for (const [channel, history] of this.#histories) if (history.expiresAt <= now) this.#histories.delete(channel);
  }

  health(): BrokerHealth {
    return { kind: 'memory', state: this.#closed ? 'closed' : 'ready' };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#channels.clear();
    this.#histories.clear();
  }
}
