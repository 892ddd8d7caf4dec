/**
 * Presence in Redis, shared by every node (centrifuge's `presence_redis.go`): per channel a
 * sorted set `<prefix>presence:{<channel>}:clients` (client id → expiry, ms), a hash
 * `…:users` (client id → user id) and a hash `…:state` (the last announced value and when).
 * Every step is one Lua script on the Redis clock (`TIME`), so nodes whose clocks disagree still
 * agree on what has expired, and the three keys of a channel share its hash slot (`{channel}`),
 * as Redis Cluster requires of a script's keys.
 *
 * Announcements are published from inside the announce script, atomically with the state they
 * report: `PUBLISH <prefix><channel>` on one Redis (what the broker of every node subscribed to
 * the channel listens to), `SPUBLISH <prefix>{<channel>}` on a Redis Cluster (mode 'sharded', in
 * the slot of the keys). Without history: no offset, nothing kept.
 *
 * The client fails commands at once while Redis is unreachable (no offline queue): the tracker
 * logs it and its next refresh writes every entry again, and entries a failed remove left behind
 * expire by themselves.
 */
import { createCommandClient, whenReady, type CommandClient } from '../broker/redis-command-client.ts';
import type { Logger } from '../logger.ts';
import {
  STATE_TTL_MS,
  announcementParts,
  presenceKeys,
  type AnnounceResult,
  type Presence,
  type PresenceEntry,
} from './presence.ts';

/** Both scripts start here: the Redis clock in ms, and the expired entries of KEYS[1]/KEYS[2] dropped. */
const PRELUDE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function sweep()
  local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
  for i = 1, #expired, 500 do
    redis.call('HDEL', KEYS[2], unpack(expired, i, math.min(i + 499, #expired)))
  end
  if #expired > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) end
end
local function distinct()
  local seen, n = {}, 0
  for _, user in ipairs(redis.call('HVALS', KEYS[2])) do
    if not seen[user] then seen[user] = true; n = n + 1 end
  end
  return n
end
`;

/** ARGV[1] = ttl ms, then client id, user id pairs. The keys outlive their newest entry by a ttl. */
const ADD_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
for i = 2, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[i])
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[1], 2 * ttl)
redis.call('PEXPIRE', KEYS[2], 2 * ttl)
return (#ARGV - 1) / 2
`;

/** ARGV = client ids. */
const REMOVE_LUA = `
redis.call('ZREM', KEYS[1], unpack(ARGV))
redis.call('HDEL', KEYS[2], unpack(ARGV))
return #ARGV
`;

const COUNT_LUA = `${PRELUDE}
sweep()
return distinct()
`;

/**
 * KEYS: clients, users, state. ARGV: min interval ms, 'online' | 'count', head, tail, pub/sub
 * channel, 'PUBLISH' | 'SPUBLISH', state ttl ms. Returns {outcome, value, retry in ms}.
 * A channel with no remembered state is taken to be empty: its empty state is recorded, not
 * published (at 0, so a first real change is never held back).
 */
const ANNOUNCE_LUA = `${PRELUDE}
sweep()
local n = distinct()
local value
if ARGV[2] == 'online' then
  if n > 0 then value = 'true' else value = 'false' end
else
  value = tostring(n)
end
local last = redis.call('HMGET', KEYS[3], 'value', 'at')
local empty = value == 'false' or value == '0'
if (last[1] and last[1] == value) or (not last[1] and empty) then
  if not last[1] then redis.call('HSET', KEYS[3], 'value', value, 'at', 0) end
  redis.call('PEXPIRE', KEYS[3], ARGV[7])
  return {'unchanged', value, 0}
end
local at = tonumber(last[2])
local interval = tonumber(ARGV[1])
if at and now - at < interval then
  redis.call('PEXPIRE', KEYS[3], ARGV[7])
  return {'too_soon', value, interval - (now - at)}
end
redis.call('HSET', KEYS[3], 'value', value, 'at', now)
redis.call('PEXPIRE', KEYS[3], ARGV[7])
redis.call(ARGV[6], ARGV[5], ARGV[3] .. value .. ARGV[4])
return {'published', value, 0}
`;

type Client = CommandClient;

interface PresenceCommands {
  fonanaPresenceAdd(clients: string, users: string, ttlMs: number, ...pairs: string[]): Promise<number>;
  fonanaPresenceRemove(clients: string, users: string, ...clientIds: string[]): Promise<number>;
  fonanaPresenceCount(clients: string, users: string): Promise<number>;
  fonanaPresenceAnnounce(
    clients: string,
    users: string,
    state: string,
    minIntervalMs: number,
    value: string,
    head: string,
    tail: string,
    redisChannel: string,
    command: string,
    stateTtlMs: number,
  ): Promise<[string, string, number]>;
}

export type RedisPresenceOptions = {
  channelPrefix: string;
  /** How long an entry counts after its last add (ms). */
  ttlMs: number;
  logger: Logger;
  /** Shown in Redis `CLIENT LIST` as `fonana-ws-presence:<nodeId>`. */
  nodeId?: string;
} & ({ url: string } | { clusterNodes: ReadonlyArray<{ host: string; port: number }> });

export class RedisPresence implements Presence {
  readonly kind = 'redis' as const;
  readonly ttlMs: number;
  readonly #client: Client;
  readonly #commands: Client & PresenceCommands;
  readonly #prefix: string;
  readonly #sharded: boolean;
  #closed = false;

  constructor(options: RedisPresenceOptions) {
    this.ttlMs = options.ttlMs;
    this.#prefix = options.channelPrefix;
    const logger = options.logger.child({ component: 'redis-presence' });
    // Auto-pipelining: a refresh of thousands of entries leaves in a few writes.
    this.#client = createCommandClient(options, { role: 'presence', nodeId: options.nodeId, autoPipelining: true, logger });
    this.#sharded = !('url' in options);
    this.#client.defineCommand('fonanaPresenceAdd', { numberOfKeys: 2, lua: ADD_LUA });
    this.#client.defineCommand('fonanaPresenceRemove', { numberOfKeys: 2, lua: REMOVE_LUA });
    this.#client.defineCommand('fonanaPresenceCount', { numberOfKeys: 2, lua: COUNT_LUA });
    this.#client.defineCommand('fonanaPresenceAnnounce', { numberOfKeys: 3, lua: ANNOUNCE_LUA });
    this.#commands = this.#client as Client & PresenceCommands;
  }

  /** Resolves once connected, or rejects after `timeoutMs`. */
  ready(timeoutMs = 5_000): Promise<void> {
    return whenReady(this.#client, timeoutMs);
  }

  onAnnouncement(): void {
    // Announcements travel through Redis pub/sub; every node's broker delivers them.
  }

  async add(channel: string, entries: readonly PresenceEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const { clients, users } = presenceKeys(this.#prefix, channel);
    await this.#commands.fonanaPresenceAdd(clients, users, this.ttlMs, ...entries.flatMap(({ clientId, userId }) => [clientId, userId]));
  }

  async remove(channel: string, clientIds: readonly string[]): Promise<void> {
    const { clients, users } = presenceKeys(this.#prefix, channel);
    // unpack() in the script takes a few thousand values at most.
    for (let i = 0; i < clientIds.length; i += 1_000) await this.#commands.fonanaPresenceRemove(clients, users, ...clientIds.slice(i, i + 1_000));
  }

  async count(channel: string): Promise<number> {
    const { clients, users } = presenceKeys(this.#prefix, channel);
    return Number(await this.#commands.fonanaPresenceCount(clients, users));
  }

  async announce(channel: string, minIntervalMs: number): Promise<AnnounceResult> {
    const { head, tail, value: kind } = announcementParts(channel);
    const { clients, users, state } = presenceKeys(this.#prefix, channel);
    const redisChannel = this.#sharded ? `${this.#prefix}{${channel}}` : this.#prefix + channel;
    const [outcome, value, retryInMs] = await this.#commands.fonanaPresenceAnnounce(
      clients,
      users,
      state,
      minIntervalMs,
      kind,
      head,
      tail,
      redisChannel,
      this.#sharded ? 'SPUBLISH' : 'PUBLISH',
      STATE_TTL_MS,
    );
    if (outcome === 'too_soon') return { outcome, value: String(value), retryInMs: Math.max(1, Number(retryInMs)) };
    return { outcome: outcome === 'published' ? 'published' : 'unchanged', value: String(value) };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([this.#client.quit()]);
    this.#client.disconnect();
  }
}
