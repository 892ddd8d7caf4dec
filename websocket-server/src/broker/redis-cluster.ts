/**
 * Redis Cluster broker with sharded pub/sub (Redis 7: SSUBSCRIBE / SPUBLISH), for when one Redis
 * is the limit. A sharded message travels only within the shard that owns the channel's slot,
 * instead of being broadcast over the cluster bus to every node as PUBLISH is, so pub/sub
 * throughput grows with the number of shards.
 *
 * Channel `post_42` is the shard channel `<prefix>{post_42}`: its hash tag puts it in the slot of
 * its history keys `<prefix>history:{post_42}:meta|stream`, so the one history script can
 * SPUBLISH it (a script may only touch its own node's slots). The control channel is
 * `<prefix>{$control}`: every WebSocket node SSUBSCRIBEs it, and an SPUBLISH reaches every
 * subscriber of that shard channel. Backends publish with `SPUBLISH ws:{post_42} '{…}'`
 * (plain PUBLISH does not reach sharded subscribers), or better with publishWithHistory(…,
 * 'sharded') so that the event gets its offset.
 *
 * Two ioredis `Cluster` clients, as in RedisBroker: one with `shardedSubscribers` (ioredis keeps
 * one subscriber connection per master and sends each SSUBSCRIBE to the owner of the channel's
 * slot), one for scripts and SPUBLISH that fails at once while the cluster is not ready.
 *
 * Losing subscriptions: ioredis re-subscribes by itself when a subscriber connection ends, when
 * the whole cluster reconnects, and when a slot moves (Redis then SUNSUBSCRIBEs the channels of
 * the slot, ioredis refreshes the slot map and SSUBSCRIBEs them at the new owner). What was
 * published in between is gone from pub/sub, so onResubscribed fires after such a re-subscribe
 * has completed without a connection failure ('subscribersReady').
 */
import { Cluster } from 'ioredis';
import type { Logger } from '../logger.ts';
import type { StreamPosition } from '../protocol/index.ts';
import type { Broker, BrokerHealth, BrokerMessageHandler, HistorySlice, PublishOptions } from './broker.ts';
import { combineStatuses, connectionName } from './redis-status.ts';
import { publishWithHistory, pubSubChannel, readHistory } from './history-script.ts';

export interface ClusterNode {
  host: string;
  port: number;
}

export interface RedisClusterBrokerOptions {
  /** Seed nodes; the rest of the cluster is discovered from them (CLUSTER SLOTS). */
  nodes: readonly ClusterNode[];
  channelPrefix: string;
  logger: Logger;
  /** Shown in Redis `CLIENT LIST` as `fonana-ws-sub:<nodeId>` to tell nodes apart. */
  nodeId?: string;
}

export class RedisClusterBroker implements Broker {
  readonly kind = 'redis' as const;
  readonly #subscriber: Cluster;
  readonly #publisher: Cluster;
  readonly #prefix: string;
  readonly #logger: Logger;
  #handler: BrokerMessageHandler = () => {};
  #resubscribed: () => void = () => {};
  #closed = false;
  /** Which master owns each slot, as of the last completed subscriber reset ('' before). */
  #topology = '';
  /** A subscriber connection or the cluster was lost since the last completed re-subscribe. */
  #lost = false;
  /** A subscriber connection failed during the re-subscribe in progress: not complete yet. */
  #failing = false;

  constructor({ nodes, channelPrefix, logger, nodeId }: RedisClusterBrokerOptions) {
    if (nodes.length === 0) throw new Error('RedisClusterBroker needs at least one seed node');
    this.#prefix = channelPrefix;
    this.#logger = logger.child({ component: 'redis-cluster-broker' });
    const clusterRetryStrategy = (attempt: number) => Math.min(100 * 2 ** attempt, 5_000);
    const seeds = nodes.map(({ host, port }) => ({ host, port }));
    this.#subscriber = new Cluster(seeds, {
      shardedSubscribers: true,
      clusterRetryStrategy,
      redisOptions: { maxRetriesPerRequest: null, connectionName: connectionName('sub', nodeId) },
    });
    this.#publisher = new Cluster(seeds, {
      clusterRetryStrategy,
      // Reject at once while the cluster is not ready instead of queueing (callers answer 503).
      enableOfflineQueue: false,
      redisOptions: { connectionName: connectionName('pub', nodeId) },
    });
    for (const [role, client] of [['subscriber', this.#subscriber], ['publisher', this.#publisher]] as const) {
      // Without an error listener an unreachable cluster would crash the process.
      client.on('error', (error: Error) => {
        if (role === 'subscriber') this.#failing = true;
        this.#logger.warn('redis cluster error', { role, error: error.message });
      });
      client.on('node error', (error: Error, node: string) => this.#logger.warn('redis cluster node error', { role, node, error: error.message }));
      client.on('ready', () => this.#logger.info('redis cluster ready', { role }));
    }
    // Errors of the sharded subscriber connections (their 'end' follows as '-node').
    this.#subscriber.on('nodeError', (error: Error, node: string) => this.#logger.warn('redis cluster subscriber error', { node, error: error.message }));
    for (const event of ['-node', 'close', 'reconnecting']) this.#subscriber.on(event, () => (this.#lost = true));
    this.#subscriber.on('subscribersReady', () => this.#subscribersReady());
    this.#subscriber.on('smessage', (redisChannel: string, payload: string) => {
      const channel = this.#channelOf(redisChannel);
      if (channel !== null) this.#handler(channel, payload);
    });
  }

  /** Resolves when both clients are ready, or rejects after `timeoutMs`. */
  async ready(timeoutMs = 5_000): Promise<void> {
    const waitFor = (client: Cluster) =>
      client.status === 'ready' ? Promise.resolve() : new Promise<void>((resolve) => client.once('ready', () => resolve()));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Redis Cluster not ready after ${timeoutMs} ms`)), timeoutMs);
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
    if (this.#closed) throw new Error('broker is closed');
    await this.#subscriber.ssubscribe(pubSubChannel(this.#prefix, channel, 'sharded'));
  }

  async unsubscribe(channel: string): Promise<void> {
    if (this.#closed) return;
    await this.#subscriber.sunsubscribe(pubSubChannel(this.#prefix, channel, 'sharded'));
  }

  async publish(channel: string, payload: string, options: PublishOptions = {}): Promise<StreamPosition | null> {
    if (this.#closed) throw new Error('broker is closed');
    if (options.transient) {
      // No offset, nothing kept (typing indicators): a plain SPUBLISH on the shard channel.
      await this.#publisher.spublish(pubSubChannel(this.#prefix, channel, 'sharded'), payload);
      return null;
    }
    return publishWithHistory(this.#publisher, this.#prefix, channel, payload, 'sharded');
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

  /** `<prefix>{post_42}` → `post_42`; null for a channel that is not ours. */
  #channelOf(redisChannel: string): string | null {
    const head = `${this.#prefix}{`;
    if (!redisChannel.startsWith(head) || !redisChannel.endsWith('}')) return null;
    return redisChannel.slice(head.length, -1);
  }

  /**
   * ioredis finished a reset of its sharded subscribers (and re-sent SSUBSCRIBE for every held
   * channel). It does so at start-up too, and again after a failed connection attempt, so this
   * is a re-subscribe only when something was lost before, or when slots changed owner, and
   * complete only when no subscriber connection failed during it.
   */
  #subscribersReady(): void {
    if (this.#closed) return;
    const topology = this.#subscriber.slots.map((owners) => owners?.[0] ?? '').join(',');
    if (topology.replace(/,/g, '') === '') return; // the reset before the first slot map
    const moved = this.#topology !== '' && topology !== this.#topology;
    const first = this.#topology === '';
    this.#topology = topology;
    if (moved) this.#lost = true;
    if (this.#failing) {
      this.#failing = false;
      this.#lost = true;
      return;
    }
    if (first || !this.#lost) {
      this.#lost = false;
      return;
    }
    this.#lost = false;
    this.#logger.info('redis cluster subscriptions restored');
    this.#resubscribed();
  }
}

