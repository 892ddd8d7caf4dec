import { httpTransport } from './http-transport.ts';
import { redisTransport } from './redis-transport.ts';
import type { Transport } from './transport.ts';

export interface TransportConfig {
  /** Set: Redis and the history script. Unset: the WebSocket server's HTTP endpoints. */
  redisUrl?: string | undefined;
  /** Must equal the WebSocket server's REDIS_CHANNEL_PREFIX. */
  redisChannelPrefix: string;
  publishUrl: string;
  publishSecret?: string | undefined;
}

/** Redis when REDIS_URL is set, the server's POST /publish otherwise: the same rule everywhere. */
export function createTransport(config: TransportConfig): Transport {
  return config.redisUrl ? redisTransport(config.redisUrl, config.redisChannelPrefix) : httpTransport(config.publishUrl, config.publishSecret);
}
