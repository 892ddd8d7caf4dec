/**
 * Redis pub/sub broker (ioredis). Two connections, as ioredis requires: a connection in
 * subscriber mode cannot publish. Every Redis channel is `<prefix><channel>` (default `ws:`), so
 * any backend can publish with a plain `PUBLISH ws:post_42 '{"type":…,"data":…}'`.
 *
 * ioredis reconnects by itself and re-subscribes the channels it held; while the publisher is
 * disconnected, publishes fail at once (no offline queue) so the caller can answer 503 instead
 * of piling messages up in memory.
 */
import { Redis } from 'ioredis';
import type { Logger } from '../logger.ts';
import type { StreamPosition } from '../protocol/index.ts';
import type { Broker, BrokerHealth, BrokerMessageHandler, HistorySlice, PublishOptions } from './broker.ts';
import { combineStatuses, connectionName } from './redis-status.ts';
import { publishWithHistory, readHistory } from './history-script.ts';

export interface RedisBrokerOptions {
  url: string;
  channelPrefix: string;
  logger: Logger;
  /** Shown in Redis `CLIENT LIST` as `fonana-ws-sub:<nodeId>` to tell nodes apart. */
  nodeId?: string;
}

export class RedisBroker implements Broker {
  readonly kind = 'redis' as const;
  readonly #subscriber: Redis;
  readonly #publisher: Redis;
  readonly #prefix: string;
  readonly #logger: Logger;
  #handler: BrokerMessageHandler = () => {};
  #resubscribed: () => void = () => {};
  #closed = false;
  /** The subscriber was ready once: a later 'ready' is a reconnect, after which ioredis has
   * re-subscribed every channel but whatever was published in between is gone from pub/sub. */
  #wasReady = false;

  constructor({ url, channelPrefix, logger, nodeId }: RedisBrokerOptions) {
    this.#prefix = channelPrefix;
    this.#logger = logger.child({ component: 'redis-broker' });
    const retryStrategy = (attempt: number) => Math.min(100 * 2 ** attempt, 5_000);
    this.#subscriber = new Redis(url, { retryStrategy, maxRetriesPerRequest: null, connectionName: connectionName('sub', nodeId) });
    this.#publisher = new Redis(url, { retryStrategy, enableOfflineQueue: false, connectionName: connectionName('pub', nodeId) });
    for (const [role, client] of [['subscriber', this.#subscriber], ['publisher', this.#publisher]] as const) {
      // Without an error listener an unreachable Redis would crash the process.
      client.on('error', (error: Error) => this.#logger.warn('redis error', { role, error: error.message }));
      client.on('ready', () => this.#logger.info('redis ready', { role }));
    }
    this.#subscriber.on('ready', () => {
      if (this.#wasReady) this.#resubscribed();
      this.#wasReady = true;
    });
    this.#subscriber.on('message', (redisChannel: string, payload: string) => {
      if (!redisChannel.startsWith(this.#prefix)) return;
      this.#handler(redisChannel.slice(this.#prefix.length), payload);
    });
  }

  /** Resolves when both connections are ready, or rejects after `timeoutMs`. */
  async ready(timeoutMs = 5_000): Promise<void> {
    const waitFor = (client: Redis) =>
      client.status === 'ready' ? Promise.resolve() : new Promise<void>((resolve) => client.once('ready', () => resolve()));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Redis not ready after ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([Promise.all([waitFor(this.#subscriber), waitFor(this.#publisher)]), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  onMessage(handler: BrokerMessageHandler): void {
    this.#handler = handler;
  }

  async subscribe(channel: string): Promise<void> {
    await this.#subscriber.subscribe(this.#prefix + channel);
  }

  async unsubscribe(channel: string): Promise<void> {
    if (this.#closed) return;
    await this.#subscriber.unsubscribe(this.#prefix + channel);
  }

  async publish(channel: string, payload: string, options: PublishOptions = {}): Promise<StreamPosition | null> {
    if (options.transient) {
      // A plain PUBLISH: no offset, nothing kept (the same as a backend's redis-cli PUBLISH).
      await this.#publisher.publish(this.#prefix + channel, payload);
      return null;
    }
    return publishWithHistory(this.#publisher, this.#prefix, channel, payload);
  }

  history(channel: string, since: number | null, limit: number): Promise<HistorySlice> {
    return readHistory(this.#publisher, this.#prefix, channel, since, limit);
  }

  onResubscribed(handler: () => void): void {
    this.#resubscribed = handler;
  }

  health(): BrokerHealth {
    return { kind: 'redis', state: this.#closed ? 'closed' : combineStatuses(this.#subscriber.status, this.#publisher.status) };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([this.#subscriber.quit(), this.#publisher.quit()]);
    this.#subscriber.disconnect();
    this.#publisher.disconnect();
  }
}

