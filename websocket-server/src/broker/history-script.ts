/**
 * Publishing with history in Redis, in one Lua script, as centrifuge's
 * `internal/redis_lua/broker_history_add_stream.lua` does: the channel's offset is incremented,
 * the event is appended to a capped stream with a TTL, and it is PUBLISHed, all atomically, so
 * an offset and a delivery can never disagree. The epoch lives in the same hash as the offset;
 * when the hash is gone (Redis restarted without persistence, or the TTL passed) a new epoch
 * is written and the stale stream dropped, so clients learn that their positions are void.
 *
 * Keys hash to the channel's slot (`{channel}`), ready for Redis Cluster. There the delivery is
 * sharded pub/sub (`SPUBLISH`, mode 'sharded'): a script may only touch its node's slots, so the
 * shard channel carries the same hash tag, `<prefix>{<channel>}` (see pubSubChannel); one Redis
 * keeps the plain `PUBLISH <prefix><channel>` (mode 'plain', the default) that any backend can
 * send. Used by the server's Redis brokers (POST /publish) and by the app's Redis transport
 * (lib/realtime), so there is one script for all.
 */
import { randomFillSync } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { HISTORY_POLICIES, parseChannel, type StreamPosition } from '../protocol/index.ts';

/** 'plain': PUBLISH on `<prefix><channel>` (one Redis). 'sharded': SPUBLISH on
 * `<prefix>{<channel>}` (Redis Cluster), in the slot of the channel's history keys. */
export type PubSubMode = 'plain' | 'sharded';

/** A client of one Redis or of a Redis Cluster; scripts go to the node of their first key. */
type Client = Redis | Cluster;

/** The Redis pub/sub channel that carries `channel`. */
export function pubSubChannel(prefix: string, channel: string, mode: PubSubMode = 'plain'): string {
  return mode === 'sharded' ? `${prefix}{${channel}}` : prefix + channel;
}

/** The publish script, delivering with PUBLISH (one Redis) or SPUBLISH (Redis Cluster). */
export function publishWithHistoryLua(command: 'PUBLISH' | 'SPUBLISH'): string {
  return PUBLISH_WITH_HISTORY_TEMPLATE.replace('__PUBLISH__', command);
}

const PUBLISH_WITH_HISTORY_TEMPLATE = `
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[5]
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'offset', 0)
  redis.call('DEL', KEYS[2])
end
local offset = redis.call('HINCRBY', KEYS[1], 'offset', 1)
local payload = ARGV[2]
local head = '{"offset":' .. offset .. ',"epoch":"' .. epoch .. '"'
local body
if payload == '{}' then body = head .. '}' else body = head .. ',' .. string.sub(payload, 2) end
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], offset .. '-1', 'd', body)
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('__PUBLISH__', ARGV[1], body)
return {offset, epoch}
`;

export const PUBLISH_WITH_HISTORY_LUA = publishWithHistoryLua('PUBLISH');
export const SPUBLISH_WITH_HISTORY_LUA = publishWithHistoryLua('SPUBLISH');

/**
 * Reads a channel's position and, when `ARGV[1]` is not empty, the events from that offset on.
 * A channel without a position yet gets one (offset 0, a new epoch), so a subscriber learns an
 * epoch that the next publish keeps.
 */
export const READ_HISTORY_LUA = `
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[3]
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'offset', 0)
  redis.call('DEL', KEYS[2])
  redis.call('EXPIRE', KEYS[1], ARGV[4])
end
local offset = tonumber(redis.call('HGET', KEYS[1], 'offset'))
local entries = {}
if ARGV[1] ~= '' then
  entries = redis.call('XRANGE', KEYS[2], ARGV[1] .. '-0', '+', 'COUNT', ARGV[2])
end
return {offset, epoch, entries}
`;

export function historyKeys(prefix: string, channel: string): { meta: string; stream: string } {
  return { meta: `${prefix}history:{${channel}}:meta`, stream: `${prefix}history:{${channel}}:stream` };
}

/** Bytes of randomness per epoch: 8 base64url characters. */
const EPOCH_BYTES = 6;
// Drawn 4 KiB at a time, as Node's randomUUID() keeps its own pool: every subscribe passes an
// epoch to the read script in case the channel has none yet. One randomBytes(6) each took
// ~2.1 µs in a loop (0.14 µs from the pool) and 17 µs per connection in the connect scenario's
// profile (bench/compare/connect-costs.ts), where it also runs cold.
const epochPool = Buffer.alloc(4096);
let epochPoolOffset = epochPool.length;

/** A fresh random epoch, for a channel whose history starts (again) now. */
export function newEpoch(): string {
  if (epochPoolOffset + EPOCH_BYTES > epochPool.length) {
    randomFillSync(epochPool);
    epochPoolOffset = 0;
  }
  const epoch = epochPool.toString('base64url', epochPoolOffset, epochPoolOffset + EPOCH_BYTES);
  epochPoolOffset += EPOCH_BYTES;
  return epoch;
}

/** Channels with a history: every valid channel name (the control channel has none). */
export function historyPolicyOf(channel: string) {
  const parsed = parseChannel(channel);
  return parsed.ok ? HISTORY_POLICIES[parsed.channel.kind] : null;
}

type RawEntry = [string, string[]];
interface HistoryCommands {
  fonanaPublishWithHistory(meta: string, stream: string, redisChannel: string, payload: string, size: number, ttl: number, epoch: string): Promise<[number, string]>;
  fonanaSPublishWithHistory(meta: string, stream: string, redisChannel: string, payload: string, size: number, ttl: number, epoch: string): Promise<[number, string]>;
  fonanaReadHistory(meta: string, stream: string, from: string, count: number, epoch: string, ttl: number): Promise<[number, string, RawEntry[]]>;
}

/** Registers the scripts once per client (ioredis sends EVALSHA, falling back to EVAL). */
function scripted(redis: Client): HistoryCommands {
  const client = redis as Client & Partial<HistoryCommands>;
  if (!client.fonanaPublishWithHistory) {
    redis.defineCommand('fonanaPublishWithHistory', { numberOfKeys: 2, lua: PUBLISH_WITH_HISTORY_LUA });
    redis.defineCommand('fonanaSPublishWithHistory', { numberOfKeys: 2, lua: SPUBLISH_WITH_HISTORY_LUA });
    redis.defineCommand('fonanaReadHistory', { numberOfKeys: 2, lua: READ_HISTORY_LUA });
  }
  return client as Client & HistoryCommands;
}

export interface HistorySlice {
  /** The channel's position now. */
  position: StreamPosition;
  /** Events after the requested offset, oldest first (at most `limit`). */
  events: Array<{ offset: number; payload: string }>;
}

/** The channel's position, and the events after `since` when given. */
export async function readHistory(redis: Client, prefix: string, channel: string, since: number | null, limit: number): Promise<HistorySlice> {
  const policy = historyPolicyOf(channel);
  if (!policy) throw new Error(`channel ${channel} has no history`);
  const { meta, stream } = historyKeys(prefix, channel);
  const from = since === null ? '' : String(since + 1);
  const [offset, epoch, entries] = await scripted(redis).fonanaReadHistory(meta, stream, from, limit, newEpoch(), policy.ttlSeconds);
  return {
    position: { offset: Number(offset), epoch: String(epoch) },
    events: entries.map(([id, fields]) => ({ offset: Number(id.split('-')[0]), payload: String(fields[1] ?? '') })),
  };
}

/** Whether `slice`, read for a client at `since`, holds every event after it. */
export function coversSince(slice: HistorySlice, since: StreamPosition): boolean {
  if (slice.position.epoch !== since.epoch || since.offset > slice.position.offset) return false;
  const missing = slice.position.offset - since.offset;
  if (missing === 0) return true;
  return slice.events.length === missing && slice.events[0]?.offset === since.offset + 1;
}

/**
 * Publishes `payload` (a JSON object's text) on `channel`'s pub/sub channel (pubSubChannel) with
 * history; resolves to the event's position. A channel without history (the control channel) is
 * a plain PUBLISH, or SPUBLISH in mode 'sharded'.
 */
export async function publishWithHistory(redis: Client, prefix: string, channel: string, payload: string, mode: PubSubMode = 'plain'): Promise<StreamPosition | null> {
  const policy = historyPolicyOf(channel);
  const redisChannel = pubSubChannel(prefix, channel, mode);
  if (!policy) {
    await (mode === 'sharded' ? redis.spublish(redisChannel, payload) : redis.publish(redisChannel, payload));
    return null;
  }
  if (!payload.startsWith('{') || !payload.endsWith('}')) throw new Error('payload must be a JSON object');
  const { meta, stream } = historyKeys(prefix, channel);
  const commands = scripted(redis);
  const publish = mode === 'sharded' ? commands.fonanaSPublishWithHistory : commands.fonanaPublishWithHistory;
  const [offset, epoch] = await publish.call(redis, meta, stream, redisChannel, payload, policy.size, policy.ttlSeconds, newEpoch());
  return { offset: Number(offset), epoch: String(epoch) };
}

/**
 * The same event on many channels in one round trip (a creator's subscribers' feeds). In mode
 * 'sharded' the channels live on different nodes, and a cluster pipeline must stay in one slot:
 * one call per channel, sent together.
 */
export async function publishManyWithHistory(redis: Client, prefix: string, channels: readonly string[], payload: string, mode: PubSubMode = 'plain'): Promise<void> {
  if (mode === 'sharded') {
    await Promise.all(channels.map((channel) => publishWithHistory(redis, prefix, channel, payload, mode)));
    return;
  }
  const pipeline = redis.pipeline() as ReturnType<Redis['pipeline']> & { fonanaPublishWithHistory?: HistoryCommands['fonanaPublishWithHistory'] };
  scripted(redis);
  for (const channel of channels) {
    const policy = historyPolicyOf(channel);
    if (!policy) {
      pipeline.publish(prefix + channel, payload);
      continue;
    }
    const { meta, stream } = historyKeys(prefix, channel);
    void pipeline.fonanaPublishWithHistory!(meta, stream, prefix + channel, payload, policy.size, policy.ttlSeconds, newEpoch());
  }
  const results = (await pipeline.exec()) ?? [];
  const failure = results.find(([error]) => error);
  if (failure) throw failure[0];
}
