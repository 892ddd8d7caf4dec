/**
 * Publishes on a Redis Cluster (REDIS_CLUSTER_NODES) exactly as the WebSocket server's cluster
 * broker does (websocket-server/src/broker/redis-cluster.ts): the history script in mode
 * 'sharded', which assigns the channel's next offset, appends the event to its capped stream and
 * SPUBLISHes it on the shard channel `<prefix>{<channel>}`, all on the master that owns the
 * channel's slot. Control messages are an SPUBLISH on `<prefix>{$control}`, which every node
 * SSUBSCRIBEs. Positions are read with the same script as the server's GET /position.
 *
 * A plain PUBLISH would not reach sharded subscribers, and a cluster pipeline must stay within
 * one slot, so a fan-out to many channels is one script call per channel, sent together
 * (publishManyWithHistory in mode 'sharded').
 *
 * One ioredis Cluster client per seed list, on globalThis like the single-Redis transport's, so
 * dev reloads do not leak connections. Every call is bounded by PUBLISH_TIMEOUT_MS: while the
 * cluster is unreachable or a slot has no master, a call fails instead of waiting in ioredis's
 * queue, and the relay retries the outbox row with its backoff.
 */
import { Cluster } from 'ioredis';
import { publishManyWithHistory, publishWithHistory, readHistory } from '@/websocket-server/src/broker/history-script.ts';
import { CONTROL_CHANNEL } from '@/websocket-server/src/protocol/index.ts';
import { log } from '../log.ts';
import type { ClusterNode } from './cluster-nodes.ts';
import { PUBLISH_TIMEOUT_MS, type Transport } from './transport.ts';

/** One client per seed list (a process normally has one), kept across dev reloads. */
const g = globalThis as typeof globalThis & { __fonanaRedisClusters?: Map<string, Cluster> };
const held = (g.__fonanaRedisClusters ??= new Map());

const keyOf = (nodes: readonly ClusterNode[]) => nodes.map(({ host, port }) => `${host}:${port}`).join(',');

function client(nodes: readonly ClusterNode[]): Cluster {
  const key = keyOf(nodes);
  const existing = held.get(key);
  if (existing) return existing;
  const cluster = new Cluster(
    nodes.map(({ host, port }) => ({ host, port })),
    {
      // Reconnect with a capped delay so that a cluster coming back is noticed within seconds.
      clusterRetryStrategy: (times) => Math.min(times * 200, 5_000),
      redisOptions: { maxRetriesPerRequest: 1, connectionName: `fonana-app-pub:${process.pid}` },
    },
  );
  // Without a listener an 'error' event would crash the process; one line per streak.
  let failing = false;
  cluster.on('error', (error: Error) => {
    if (!failing) log.warn('redis cluster publisher error', { error: error.message });
    failing = true;
  });
  cluster.on('ready', () => {
    if (failing) log.info('redis cluster publisher reconnected');
    failing = false;
  });
  held.set(key, cluster);
  return cluster;
}

/** `work`, or a rejection once PUBLISH_TIMEOUT_MS has passed (ioredis keeps retrying a queued
 * command while the cluster is down; the caller must not wait for that). */
async function bounded<T>(what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`redis cluster: ${what} timed out after ${PUBLISH_TIMEOUT_MS} ms`)), PUBLISH_TIMEOUT_MS);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function redisClusterTransport(nodes: readonly ClusterNode[], prefix: string): Transport {
  if (nodes.length === 0) throw new Error('redisClusterTransport needs at least one seed node');
  return {
    kind: 'redis-cluster',
    async send(channels, payload) {
      const text = JSON.stringify(payload);
      const cluster = client(nodes);
      const work: Promise<unknown> =
        channels.length === 1 ? publishWithHistory(cluster, prefix, channels[0]!, text, 'sharded') : publishManyWithHistory(cluster, prefix, channels, text, 'sharded');
      await bounded('publish', work);
    },
    async sendControl(message) {
      // No history on $control: an SPUBLISH on its shard channel. 0 receivers only means no node is up.
      await bounded('control', publishWithHistory(client(nodes), prefix, CONTROL_CHANNEL, JSON.stringify(message), 'sharded'));
    },
    async position(channel) {
      return (await bounded('position', readHistory(client(nodes), prefix, channel, null, 0))).position;
    },
    async close() {
      const key = keyOf(nodes);
      const cluster = held.get(key);
      if (!cluster) return;
      held.delete(key);
      // QUIT needs a connection; a cluster that never became ready is just disconnected.
      if (cluster.status === 'ready') await cluster.quit().catch(() => cluster.disconnect());
      else cluster.disconnect();
    },
  };
}
