/**
 * Publishes the test event the two ways any backend can: Redis `PUBLISH <prefix><channel>`
 * (every node hears it) or the server's `POST /publish` with WS_PUBLISH_SECRET.
 */
import { Redis } from 'ioredis';

export interface PublishTarget {
  redisUrl: string | undefined;
  redisPrefix: string;
  publishUrl: string | undefined;
  publishSecret: string | undefined;
}

export type Publisher = { via: string; publish(channel: string, event: { type: string; data: unknown }): Promise<string> };

/** The first way available, or undefined when neither is configured. */
export function choosePublisher(target: PublishTarget, timeoutMs: number): Publisher | undefined {
  const { redisUrl, redisPrefix, publishUrl, publishSecret } = target;
  if (redisUrl) {
    return {
      via: `Redis PUBLISH ${redisPrefix}<channel>`,
      async publish(channel, event) {
        const redis = new Redis(redisUrl, { lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null });
        redis.on('error', () => {});
        try {
          await redis.connect();
          const receivers = await redis.publish(`${redisPrefix}${channel}`, JSON.stringify(event));
          // 0 means no node holds the channel: the prefix differs from the server's, or the
          // server uses its in-process broker.
          return `${receivers} node(s) subscribed in Redis`;
        } finally {
          redis.disconnect();
        }
      },
    };
  }
  if (publishUrl && publishSecret) {
    return {
      via: `POST ${publishUrl.replace(/\/+$/, '')}/publish`,
      async publish(channel, event) {
        const response = await fetch(`${publishUrl.replace(/\/+$/, '')}/publish`, {
          method: 'POST',
          headers: { authorization: `Bearer ${publishSecret}`, 'content-type': 'application/json' },
          body: JSON.stringify({ channel, ...event }),
          signal: AbortSignal.timeout(timeoutMs),
        });
        const text = await response.text();
        if (response.status !== 202) throw new Error(`HTTP ${response.status} ${text.slice(0, 200)}`);
        return 'HTTP 202';
      },
    };
  }
  return undefined;
}
