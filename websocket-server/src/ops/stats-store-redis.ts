/**
 * Node stats in Redis, shared by every node: a sorted set `<prefix>ops:{nodes}:expiry` (node id
 * → expiry, ms) and a hash `<prefix>ops:{nodes}:stats` (node id → `<written at ms>|<snapshot
 * JSON>`). As in presence/redis.ts every step is one Lua script on the Redis clock (`TIME`), so
 * nodes whose clocks disagree still agree on which node has expired, and both keys share one
 * hash slot (`{nodes}`), as a script's keys must on a Redis Cluster.
 *
 * Its own connection (like presence's): a slow stats read never queues behind pub/sub, and no
 * offline queue, so a write while Redis is down fails at once and the next one tries again.
 */
import { createCommandClient, whenReady, type CommandClient } from '../broker/redis-command-client.ts';
import type { Logger } from '../logger.ts';
import { nodeStatsSnapshotSchema, type ListedNodeStats, type NodeStatsSnapshot, type NodeStatsStore } from './stats-store.ts';

const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/**
 * KEYS: expiry, stats. ARGV: node id, snapshot JSON, ttl ms. The keys live at least twice the
 * longest ttl any node wrote with (only ever raised), so a node with a long ttl is not dropped
 * with the key when a node with a short one stops writing.
 */
const WRITE_LUA = `${NOW}
local ttl = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], now .. '|' .. ARGV[2])
for _, key in ipairs(KEYS) do
  if redis.call('PTTL', key) < 2 * ttl then redis.call('PEXPIRE', key, 2 * ttl) end
end
return 1
`;

/** Drops expired nodes, then returns {now, id, value, id, value, …}. */
const LIST_LUA = `${NOW}
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for i = 1, #expired, 500 do
  redis.call('HDEL', KEYS[2], unpack(expired, i, math.min(i + 499, #expired)))
end
if #expired > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) end
local out = {tostring(now)}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local value = redis.call('HGET', KEYS[2], id)
  if value then
    out[#out + 1] = id
    out[#out + 1] = value
  end
end
return out
`;

const REMOVE_LUA = `
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
`;

interface StatsCommands {
  fonanaStatsWrite(expiry: string, stats: string, nodeId: string, json: string, ttlMs: number): Promise<number>;
  fonanaStatsList(expiry: string, stats: string): Promise<string[]>;
  fonanaStatsRemove(expiry: string, stats: string, nodeId: string): Promise<number>;
}

type Client = CommandClient;

export type RedisNodeStatsStoreOptions = {
  /** REDIS_CHANNEL_PREFIX: nodes of one deployment share it, a test run has its own. */
  prefix: string;
  logger: Logger;
  /** Shown in Redis `CLIENT LIST` as `fonana-ws-ops:<nodeId>`. */
  nodeId?: string;
} & ({ url: string } | { clusterNodes: ReadonlyArray<{ host: string; port: number }> });

export function nodeStatsKeys(prefix: string): { expiry: string; stats: string } {
  return { expiry: `${prefix}ops:{nodes}:expiry`, stats: `${prefix}ops:{nodes}:stats` };
}

export class RedisNodeStatsStore implements NodeStatsStore {
  readonly kind = 'redis' as const;
  readonly #client: Client;
  readonly #commands: Client & StatsCommands;
  readonly #keys: { expiry: string; stats: string };
  readonly #logger: Logger;
  #closed = false;

  constructor(options: RedisNodeStatsStoreOptions) {
    this.#keys = nodeStatsKeys(options.prefix);
    this.#logger = options.logger.child({ component: 'node-stats' });
    this.#client = createCommandClient(options, { role: 'ops', nodeId: options.nodeId, logger: this.#logger, errorLevel: 'debug' });
    this.#client.defineCommand('fonanaStatsWrite', { numberOfKeys: 2, lua: WRITE_LUA });
    this.#client.defineCommand('fonanaStatsList', { numberOfKeys: 2, lua: LIST_LUA });
    this.#client.defineCommand('fonanaStatsRemove', { numberOfKeys: 2, lua: REMOVE_LUA });
    this.#commands = this.#client as Client & StatsCommands;
  }

  /** Resolves once connected, or rejects after `timeoutMs`. */
  ready(timeoutMs = 5_000): Promise<void> {
    return whenReady(this.#client, timeoutMs);
  }

  async write(snapshot: NodeStatsSnapshot, ttlMs: number): Promise<void> {
    await this.#commands.fonanaStatsWrite(this.#keys.expiry, this.#keys.stats, snapshot.nodeId, JSON.stringify(snapshot), ttlMs);
  }

  async list(): Promise<ListedNodeStats[]> {
    const [nowText, ...pairs] = await this.#commands.fonanaStatsList(this.#keys.expiry, this.#keys.stats);
    const now = Number(nowText);
    const listed: ListedNodeStats[] = [];
    for (let i = 0; i + 1 < pairs.length; i += 2) {
      const value = pairs[i + 1]!;
      const bar = value.indexOf('|');
      let parsed;
      try {
        parsed = nodeStatsSnapshotSchema.safeParse(JSON.parse(value.slice(bar + 1)));
      } catch {
        parsed = undefined;
      }
      // Another version's shape, or something else wrote here: left out, never passed on.
      if (!parsed?.success) {
        this.#logger.warn('malformed node stats entry ignored', { nodeId: pairs[i]!.slice(0, 200) });
        continue;
      }
      listed.push({ ...parsed.data, ageMs: Math.max(0, now - Number(value.slice(0, bar))) });
    }
    return listed.sort((a, b) => a.nodeId.localeCompare(b.nodeId));
  }

  async remove(nodeId: string): Promise<void> {
    await this.#commands.fonanaStatsRemove(this.#keys.expiry, this.#keys.stats, nodeId);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([this.#client.quit()]);
    this.#client.disconnect();
  }
}
