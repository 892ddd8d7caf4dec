import type { ClusterNode } from './cluster-nodes.ts';
import { httpTransport } from './http-transport.ts';
import { redisClusterTransport } from './redis-cluster-transport.ts';
import { redisTransport } from './redis-transport.ts';
import type { Transport } from './transport.ts';

export interface TransportConfig {
  /** Non-empty: a Redis Cluster, sharded pub/sub and the history script (REDIS_CLUSTER_NODES). */
  redisClusterNodes?: readonly ClusterNode[] | undefined;
  /** Set: Redis and the history script. Unset: the WebSocket server's HTTP endpoints. */
  redisUrl?: string | undefined;
  /** Must equal the WebSocket server's REDIS_CHANNEL_PREFIX. */
  redisChannelPrefix: string;
  publishUrl: string;
  publishSecret?: string | undefined;
}

/**
 * The same rule everywhere, and the server's (websocket-server/src/main.ts): REDIS_CLUSTER_NODES
 * when set (it takes precedence over REDIS_URL), else REDIS_URL, else the server's POST /publish.
 */
export function createTransport(config: TransportConfig): Transport {
  if (config.redisClusterNodes && config.redisClusterNodes.length > 0) return redisClusterTransport(config.redisClusterNodes, config.redisChannelPrefix);
  return config.redisUrl ? redisTransport(config.redisUrl, config.redisChannelPrefix) : httpTransport(config.publishUrl, config.publishSecret);
}
