/**
 * Fuzzing the real server: FUZZ_FRAMES (100,000 by default) random and malformed frames over 50
 * connections against one server process, while well-behaved clients watch a post channel and
 * events are published through Redis the whole time.
 *
 * Every frame has an expected outcome, decided when it is made: a reply (which type or error
 * code, with or without the request id echoed) or one of the documented closes (1007 invalid
 * UTF-8, 1009 frame above maxPayload, 4001 after an `unauthorized` reply to a refresh with a junk
 * token). A fuzzing connection keeps at most WINDOW frames awaiting replies; before a frame that
 * must close it, it waits for every reply, then reconnects. Replies carrying an id are matched
 * by id; replies without one come back in the order the frames were sent (the server answers
 * those synchronously), so they are matched in order.
 *
 * Replay: the seed is printed; FUZZ_SEED=<n> sends the same frames again (each connection slot
 * draws from its own PRNG, so what a slot sends does not depend on timing). FUZZ_EXCLUDE=kind or
 * kind:sub,… leaves frame kinds out, to look past a known failure; FUZZ_VERBOSE=1 prints the
 * counts per kind:sub too. If the server dies, the frames it had not answered are replayed one
 * by one against a fresh server, and the failure names the one that kills it.
 *
 * The server runs under `--expose-gc` with test/support/gc-on-signal.mjs preloaded through
 * NODE_OPTIONS (startServer passes the environment on), so its heap is read after full
 * collections, before and after the fuzzing (GC_HEAP_SNAPSHOT_DIR=<dir> also writes a heap
 * snapshot at each reading, to compare them).
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { isUtf8 } from 'node:buffer';
import { randomInt } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { EncryptJWT } from 'jose';
import WebSocket, { type RawData } from 'ws';
import { TEST_NEXTAUTH_SECRET, testRedisPrefix, testRedisUrl } from '../../../test/support/env.ts';
import { deriveNextAuthKey } from '../../src/auth/session-verifier.ts';
import { isEventType, type RequestId } from '../../src/protocol/index.ts';
import { TestClient, type Frame } from '../support/client.ts';
import { Fixtures } from '../support/fixtures.ts';
import { startServer, type ServerProcess } from '../support/server-process.ts';
import { mintSessionToken } from '../support/tokens.ts';

// ─── parameters ────────────────────────────────────────────────────────────────────────────────

const TOTAL_FRAMES = Number(process.env.FUZZ_FRAMES ?? 100_000);
const CONNECTIONS = 50;
/** 5 fuzzing connections per user: far under MAX_CONNECTIONS_PER_USER (20), reconnects included. */
const FUZZ_USERS = 10;
const WATCHERS = 5;
/** Frames one fuzzing connection may have awaiting a reply. */
const WINDOW = 16;
/** MAX_PAYLOAD_BYTES's default; the test leaves it unset so oversize frames meet the real limit. */
const MAX_PAYLOAD = 16 * 1024;
/** MAX_CHANNEL_NAME_LENGTH and MAX_TOKEN_LENGTH of the protocol (written out: they are under test). */
const MAX_CHANNEL = 96;
const MAX_TOKEN = 8 * 1024;
const REPLY_TIMEOUT_MS = 15_000;
const PUBLISH_EVERY_MS = 20;
/** Warm-up before the heap baseline: every code path once, so lazy compilation is not counted as growth. */
const WARMUP_SLOTS = 10;
const WARMUP_FRAMES_PER_SLOT = 1_000;
/**
 * Heap growth allowed between the baseline and the end, after full GCs with the same 7
 * well-behaved sockets open. Once warmed up, nothing a malformed frame or a closed connection
 * leaves behind should survive; what may legitimately differ is bounded and independent of the
 * run's length. Measured here (100,000 frames): +1.4 to +1.9 MiB, of which ~1.0 MiB is code space
 * (V8 optimising hot paths during the run) and the rest old space: deoptimisation data and
 * feedback, prom-client label children, and the closed connections that cancelled entries of the
 * Deadlines heap still reference until it compacts (at most 64 entries at this size). The growth
 * stayed under 3 MiB for 300,000 frames too. A leak proportional to the run is far above 4 MiB:
 * ~2,000 connections are opened and closed (a leaked Connection, with its ws, socket, logger
 * child and buffers, is several KB: 2,000 × 2 KB = 4 MB), and 100,000 frames are answered
 * (40 bytes kept per frame = 4 MB).
 */
const HEAP_MARGIN_BYTES = 4 * 1024 * 1024;

const SEED = (() => {
  const raw = process.env.FUZZ_SEED;
  if (raw === undefined || raw === '') return randomInt(2 ** 32 - 1) >>> 0;
  const seed = Number(raw);
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) throw new Error(`FUZZ_SEED must be an integer in [0, 2^32): ${raw}`);
  return seed;
})();
const EXCLUDE = (process.env.FUZZ_EXCLUDE ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);

const GC_PRELOAD = fileURLToPath(new URL('../support/gc-on-signal.mjs', import.meta.url));
const SERVER_ENV: Record<string, string> = {
  // Far above what 50 connections send, so no fuzzing client is closed for rate (4029) alone.
  CLIENT_FRAMES_PER_SECOND: '1000000',
  CLIENT_FRAME_BURST: '1000000',
  // Every reconnect after a 1007/1009/4001 is a connect from 127.0.0.1: ~2,000 in a run.
  CONNECT_RATE_PER_IP: '100000',
  CONNECT_BURST_PER_IP: '100000',
  // Subscribes are budgeted per user before the channel name is even parsed: at the default
  // (10/s) nearly every fuzzed subscribe would be answered rate_limited and the channel checks
  // behind it would go untested.
  SUBSCRIBES_PER_SECOND_PER_USER: '100000',
  SUBSCRIBE_BURST_PER_USER: '100000',
  NODE_OPTIONS: [process.env.NODE_OPTIONS ?? '', '--expose-gc', `--import=${JSON.stringify(GC_PRELOAD)}`].join(' ').trim(),
};

// ─── seeded randomness ─────────────────────────────────────────────────────────────────────────

class Rng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** mulberry32: [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) | 0;
    let t = Math.imul(this.#state ^ (this.#state >>> 15), 1 | this.#state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = Math.floor(this.next() * 256);
    return out;
  }

  alnum(n: number): string {
    const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[Math.floor(this.next() * alphabet.length)];
    return s;
  }
}

function slotSeed(seed: number, stream: number): number {
  let h = (seed ^ Math.imul(stream + 1, 0x9e3779b9)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

// ─── frames and their expected outcomes ────────────────────────────────────────────────────────

/** `pong`, `subscribed`, `unsubscribed`, `refreshed`, or `error:<code>`. */
type Outcome = string;

interface Plan {
  kind: string;
  sub: string;
  data: string | Buffer;
  binary: boolean;
  /** The reply this frame must get; absent when it must close the connection instead. */
  reply?: { allowed: readonly Outcome[]; id?: RequestId; channel?: string };
  /** The close code that must follow (after the reply, if there is one). */
  close?: number;
  /** Said in failure messages (the nesting depth of a deep frame, say). */
  note?: string;
}

interface World {
  fuzzUserIds: string[];
  victimId: string;
  creatorId: string;
  publicPostId: string;
  lockedPostId: string;
  /** Valid session tokens per user: the first connects, the others are fresh ones for `refresh`. */
  tokens: Map<string, string[]>;
  /** Refresh tokens that must be refused, per fuzzing user (another user's token differs per user). */
  junkTokens: Map<string, Array<{ sub: string; token: string }>>;
}

interface GenContext {
  world: World;
  userId: string;
  /** Channels held, as the server will see them after every frame sent so far (send order). */
  held: Set<string>;
  nextId(): RequestId;
}

const J = JSON.stringify;
const BAD_REQUEST: readonly Outcome[] = ['error:bad_request'];

function isEchoedId(value: unknown): value is RequestId {
  return (typeof value === 'number' && Number.isSafeInteger(value)) || (typeof value === 'string' && value.length <= 64);
}

function plan(kind: string, sub: string, data: string | Buffer, reply: Plan['reply'], extra: Partial<Plan> = {}): Plan {
  return { kind, sub, data, binary: false, reply, ...extra };
}

function badRequest(kind: string, sub: string, data: string, id?: RequestId): Plan {
  return plan(kind, sub, data, { allowed: BAD_REQUEST, ...(id === undefined ? {} : { id }) });
}

const withNote = (p: Plan, depth: number): Plan => ({ ...p, note: `depth ${depth}` });
const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
const nestedObjects = (depth: number) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);

/** `prefix + fill… + suffix`, exactly `bytes` long in UTF-8 (`fill` is one or two bytes a char). */
function sized(bytes: number, prefix: string, suffix: string, fill = 'x'): string {
  let room = bytes - Buffer.byteLength(prefix) - Buffer.byteLength(suffix);
  if (room < 0) throw new Error('sized: prefix and suffix exceed the size');
  const width = Buffer.byteLength(fill);
  const body = fill.repeat(Math.floor(room / width));
  room -= Buffer.byteLength(body);
  return prefix + body + 'x'.repeat(room) + suffix;
}

const ID_SHAPE = /^[A-Za-z0-9-]{1,64}$/;

const JSON_GARBAGE = [
  '',
  ' ',
  '{',
  '}',
  '[',
  ']',
  '{not json',
  '{"type":"ping"',
  '{"type":"ping",}',
  "{'type':'ping'}",
  '{"type":"ping"}}',
  '{"type":"ping"}{"type":"ping"}',
  '{"type":"ping"}\n{"type":"ping"}',
  '{"type" "ping"}',
  '{"type"::"ping"}',
  '{type:"ping"}',
  '{"type":"ping" /* comment */}',
  '{"type":"ping","id":1,}',
  '{"type":"p\\ing"}',
  '{"type":"\\u12"}',
  '{"type":"\\x41"}',
  '{"type":"ping\n"}',
  '\ufeff{"type":"ping"}',
  '\u0000',
  '\u0000{"type":"ping"}',
  'NaN',
  'Infinity',
  '-Infinity',
  'undefined',
  '-',
  '01',
  '1e',
  '.5',
  '+1',
  '0x10',
  'tru',
  'nul',
  '"unterminated',
  '{"type":"ping","id":01}',
  '{"type":"ping","id":-}',
  '{"__proto__":}',
  '\\',
  '<script>alert(1)</script>',
  'GET / HTTP/1.1\r\nHost: x\r\n\r\n',
];
for (const text of JSON_GARBAGE) {
  let parses = true;
  try {
    JSON.parse(text);
  } catch {
    parses = false;
  }
  if (parses) throw new Error(`JSON_GARBAGE entry parses as JSON: ${J(text)}`);
}

const SQLISH = [
  "' OR '1'='1",
  "1' OR 1=1 --",
  '1; DROP TABLE "User";--',
  "1' UNION SELECT * FROM \"Session\"--",
  '1)--',
  '%',
  '%25',
  '1%27',
  "'; SELECT pg_sleep(10);--",
  '$1',
  '1 OR 1=1',
  '\\x00',
  '"; DELETE FROM "Post" WHERE "1"="1',
  "ab' AND (SELECT 1 FROM pg_user)='1",
  'id::text',
  '*',
  '?',
  '[a-z]*',
];
for (const text of SQLISH) if (ID_SHAPE.test(text)) throw new Error(`SQLISH entry is a valid id: ${text}`);

const PROTO_WORDS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__', 'isPrototypeOf'];

function channelOutcome(channel: string, outcome: Outcome): Outcome {
  return channel.length < 1 || channel.length > MAX_CHANNEL ? 'error:bad_request' : outcome;
}

/** A channel name that must be refused, with the error code its refusal must carry. */
function badChannel(r: Rng, c: GenContext): { sub: string; channel: string; outcome: Outcome } {
  const { world, userId } = c;
  const others = [...world.fuzzUserIds.filter((id) => id !== userId), world.victimId];
  const other = r.pick(others);
  const randomId = () => 'c' + r.alnum(24);
  const category = r.pick(['unicode', 'long', 'control', 'sql', 'foreign', 'missing', 'proto', 'shape'] as const);
  switch (category) {
    case 'unicode': {
      const channel = r.pick([
        `post_é${world.publicPostId}`,
        `notifications_${userId}\u200b`,
        `notifications_\u0000${userId}`,
        `feed_${userId}\u0301`,
        `pοst_${world.publicPostId}`, // Greek omicron
        `ｐｏｓｔ_${world.publicPostId}`,
        'post_１２３',
        'post_٣',
        `post_${world.publicPostId}\n`,
        `post_${world.publicPostId}\u2028`,
        'post_🙂',
        `\u202epost_${world.publicPostId}`,
        `post_${world.publicPostId}\ud800`,
        `notifications_${other}\udc00`,
        `feed_${userId} `,
        ` feed_${userId}`,
        `feed_\t${userId}`,
        'ポスト_1',
        `notifications_а${userId}`, // Cyrillic a
      ]);
      return { sub: 'unicode', channel, outcome: channelOutcome(channel, 'error:invalid_channel') };
    }
    case 'long': {
      const variant = r.pick(['10kb', '97', '96', 'id64', 'id65'] as const);
      const channel =
        variant === '10kb'
          ? `post_${'a'.repeat(10 * 1024)}`
          : variant === '97'
            ? `post_${'a'.repeat(92)}`
            : variant === '96'
              ? `post_${'a'.repeat(91)}`
              : variant === 'id64'
                ? `post_${r.alnum(64)}`
                : `post_${r.alnum(65)}`;
      const outcome = variant === 'id64' ? 'error:not_found' : 'error:invalid_channel';
      return { sub: `long-${variant}`, channel, outcome: channelOutcome(channel, outcome) };
    }
    case 'control': {
      const prefix = testRedisPrefix('ws:');
      const channel = r.pick([
        '$control',
        `${prefix}$control`,
        `${prefix}post_${world.publicPostId}`,
        `ws:notifications_${other}`,
        '$control_1',
        'control_1',
        `notifications_${other}$control`,
        '*',
        'post_*',
        `notifications_*`,
        `feed_${userId}*`,
        `__keyspace@0__:*`,
      ]);
      return { sub: 'control', channel, outcome: channelOutcome(channel, 'error:invalid_channel') };
    }
    case 'sql': {
      const channel = `${r.pick(['post', 'notifications', 'feed', 'creator'])}_${r.pick(SQLISH)}`;
      return { sub: 'sql', channel, outcome: channelOutcome(channel, 'error:invalid_channel') };
    }
    case 'foreign': {
      const variant = r.pick(['notifications', 'feed', 'locked-post', 'upper-own', 'missing-user'] as const);
      const channel =
        variant === 'notifications'
          ? `notifications_${other}`
          : variant === 'feed'
            ? `feed_${other}`
            : variant === 'locked-post'
              ? `post_${world.lockedPostId}`
              : variant === 'upper-own'
                ? `notifications_${userId.toUpperCase()}`
                : `feed_${randomId()}`;
      return { sub: `foreign-${variant}`, channel, outcome: 'error:forbidden' };
    }
    case 'missing': {
      const channel = r.pick([
        `post_${randomId()}`,
        `creator_${randomId()}`,
        `creator_${world.victimId}`, // a user, not a creator
        `creator_${userId}`,
        `post_${world.publicPostId.toUpperCase()}`,
        'post_-',
        'post_0',
        `post_${'9'.repeat(64)}`,
        `creator_${world.publicPostId}`,
        `post_${world.creatorId}`,
      ]);
      return { sub: 'missing', channel, outcome: 'error:not_found' };
    }
    case 'proto': {
      const word = r.pick(PROTO_WORDS);
      const variant = r.pick(['bare', 'kind', 'post-id', 'notifications-id', 'feed-id', 'creator-id'] as const);
      if (variant === 'bare') return { sub: 'proto-bare', channel: word, outcome: 'error:invalid_channel' };
      if (variant === 'kind') {
        const channel = `${word}_1`;
        return { sub: 'proto-kind', channel, outcome: 'error:invalid_channel' };
      }
      const kind = variant.split('-')[0]!;
      const channel = `${kind}_${word}`;
      if (!ID_SHAPE.test(word)) return { sub: `proto-${kind}`, channel, outcome: 'error:invalid_channel' };
      const outcome = kind === 'notifications' || kind === 'feed' ? 'error:forbidden' : 'error:not_found';
      return { sub: `proto-${kind}`, channel, outcome };
    }
    case 'shape': {
      const channel = r.pick([
        'notifications_',
        `notifications__${userId}`,
        `notifications_${userId}_x`,
        `Notifications_${userId}`,
        `NOTIFICATIONS_${userId}`,
        `notification_${userId}`,
        `feeds_${userId}`,
        `post`,
        `_${world.publicPostId}`,
        `post-${world.publicPostId}`,
        `post.${world.publicPostId}`,
        `post_${world.publicPostId}/`,
        `post_${world.publicPostId},post_${world.lockedPostId}`,
        `post_${world.publicPostId} post_${world.lockedPostId}`,
        `room_${world.publicPostId}`,
        'post_../../etc/passwd',
        '_',
        'a_b',
      ]);
      return { sub: 'shape', channel, outcome: channelOutcome(channel, 'error:invalid_channel') };
    }
  }
}

function randomUnicode(r: Rng, length: number): string {
  let s = '';
  for (let i = 0; i < length; i++) {
    const range = r.int(0, 6);
    const cp =
      range === 0
        ? r.int(0x20, 0x7e)
        : range === 1
          ? r.int(0, 0x1f)
          : range === 2
            ? r.int(0x80, 0x7ff)
            : range === 3
              ? r.int(0x800, 0xd7ff)
              : range === 4
                ? r.int(0xe000, 0xfffd)
                : range === 5
                  ? r.int(0x10000, 0x10ffff)
                  : '{}[]":,\\'.charCodeAt(r.int(0, 7));
    s += String.fromCodePoint(cp);
  }
  return s;
}

const INVALID_UTF8: readonly number[][] = [
  [0x80],
  [0xbf],
  [0xc0, 0xaf], // overlong '/'
  [0xc1, 0xbf],
  [0xe0, 0x80, 0xaf], // overlong
  [0xed, 0xa0, 0x80], // UTF-16 surrogate
  [0xed, 0xbf, 0xbf],
  [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
  [0xf5, 0x80, 0x80, 0x80],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
  [0xfe],
  [0xff],
  [0xc3], // truncated
  [0xe2, 0x82],
  [0xf0, 0x9f, 0x98],
  [0xc3, 0x28],
];

interface Kind {
  name: string;
  weight: number;
  gen(r: Rng, c: GenContext): Plan;
}

const KINDS: Kind[] = [
  {
    // Well-formed requests: the replies the protocol promises, and the channels this user may read.
    name: 'valid',
    weight: 22,
    gen(r, c) {
      const { world, userId } = c;
      const allowed = [`notifications_${userId}`, `feed_${userId}`, `post_${world.publicPostId}`, `creator_${world.creatorId}`];
      const p = r.next();
      if (p < 0.3) {
        if (r.chance(0.3)) return plan('valid', 'ping-no-id', '{"type":"ping"}', { allowed: ['pong'] });
        const id = r.chance(0.1) ? r.pick<RequestId>(['', 0, -7, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 'x'.repeat(64), '🙂', 'id with spaces']) : c.nextId();
        return plan('valid', 'ping', J({ type: 'ping', id }), { allowed: ['pong'], id });
      }
      if (p < 0.65) {
        const channel = r.pick(allowed);
        c.held.add(channel);
        const id = c.nextId();
        return plan('valid', 'subscribe', J({ type: 'subscribe', channel, id }), { allowed: ['subscribed'], id, channel });
      }
      if (p < 0.95) {
        const channel = r.pick(allowed);
        const outcome = c.held.has(channel) ? 'unsubscribed' : 'error:not_subscribed';
        c.held.delete(channel);
        const id = c.nextId();
        return plan('valid', 'unsubscribe', J({ type: 'unsubscribe', channel, id }), { allowed: [outcome], id, channel });
      }
      const tokens = world.tokens.get(userId)!;
      const id = c.nextId();
      return plan('valid', 'refresh', J({ type: 'refresh', token: r.pick(tokens.slice(1)), id }), { allowed: ['refreshed'], id });
    },
  },
  {
    // Valid frames naming channels that must be refused: malformed, unknown kinds, other users',
    // locked or missing ones.
    name: 'bad_channel',
    weight: 16,
    gen(r, c) {
      const { sub, channel, outcome } = badChannel(r, c);
      const id = c.nextId();
      if (r.chance(0.25)) {
        const unsubscribeOutcome = channelOutcome(channel, 'error:not_subscribed');
        return plan('bad_channel', `unsubscribe-${sub}`, J({ type: 'unsubscribe', channel, id }), { allowed: [unsubscribeOutcome], id, channel });
      }
      return plan('bad_channel', `subscribe-${sub}`, J({ type: 'subscribe', channel, id }), { allowed: [outcome], id, channel });
    },
  },
  {
    // Valid JSON of the wrong types.
    name: 'wrong_types',
    weight: 10,
    gen(r, c) {
      const id = c.nextId();
      const ID = J(id);
      const { world } = c;
      const cases: Array<() => Plan> = [
        () => badRequest('wrong_types', 'type-number', `{"type":1,"id":${ID}}`, id),
        () => badRequest('wrong_types', 'type-null', `{"type":null,"id":${ID}}`, id),
        () => badRequest('wrong_types', 'type-bool', '{"type":true}'),
        () => badRequest('wrong_types', 'type-array', `{"type":["ping"],"id":${ID}}`, id),
        () => badRequest('wrong_types', 'type-object', `{"type":{"0":"p"},"id":${ID}}`, id),
        () => badRequest('wrong_types', 'channel-object', `{"type":"subscribe","channel":{},"id":${ID}}`, id),
        () => badRequest('wrong_types', 'channel-number', `{"type":"subscribe","channel":5,"id":${ID}}`, id),
        () => badRequest('wrong_types', 'channel-null', `{"type":"subscribe","channel":null,"id":${ID}}`, id),
        () => badRequest('wrong_types', 'channel-bool', '{"type":"subscribe","channel":true}'),
        () => badRequest('wrong_types', 'channel-array', `{"type":"subscribe","channel":[${J(`post_${world.publicPostId}`)}],"id":${ID}}`, id),
        () => badRequest('wrong_types', 'channel-empty', `{"type":"subscribe","channel":"","id":${ID}}`, id),
        () => badRequest('wrong_types', 'channel-missing', `{"type":"subscribe","id":${ID}}`, id),
        () => badRequest('wrong_types', 'channel-operator', `{"type":"unsubscribe","channel":{"$ne":null},"id":${ID}}`, id),
        () => badRequest('wrong_types', 'id-float', '{"type":"ping","id":1.5}'),
        () => badRequest('wrong_types', 'id-bool', '{"type":"ping","id":true}'),
        () => badRequest('wrong_types', 'id-object', '{"type":"ping","id":{}}'),
        () => badRequest('wrong_types', 'id-array', '{"type":"ping","id":[1]}'),
        () => badRequest('wrong_types', 'id-null', '{"type":"ping","id":null}'),
        () => badRequest('wrong_types', 'id-unsafe', '{"type":"ping","id":9007199254740993}'),
        () => badRequest('wrong_types', 'id-infinite', '{"type":"ping","id":1e400}'),
        () => badRequest('wrong_types', 'id-long', J({ type: 'ping', id: 'x'.repeat(65) })),
        () => badRequest('wrong_types', 'token-number', `{"type":"refresh","token":5,"id":${ID}}`, id),
        () => badRequest('wrong_types', 'token-empty', `{"type":"refresh","token":"","id":${ID}}`, id),
        () => badRequest('wrong_types', 'token-missing', `{"type":"refresh","id":${ID}}`, id),
        () => badRequest('wrong_types', 'token-array', `{"type":"refresh","token":["a"],"id":${ID}}`, id),
        () => badRequest('wrong_types', 'token-too-long', J({ type: 'refresh', token: 'x'.repeat(MAX_TOKEN + 1), id }), id),
        () => badRequest('wrong_types', 'duplicate-key-invalid', `{"type":"ping","id":${ID},"type":"subscribe"}`, id),
        // JSON.parse keeps the last of duplicate keys: this one is a valid ping.
        () => plan('wrong_types', 'duplicate-key-ping', `{"type":"subscribe","id":${ID},"type":"ping"}`, { allowed: ['pong'], id }),
        () => badRequest('wrong_types', 'top-empty-array', '[]'),
        () => badRequest('wrong_types', 'top-array', `[{"type":"ping","id":${ID}}]`),
        () => badRequest('wrong_types', 'top-number', r.pick(['0', '-1', '1e308', '42', '-0.0'])),
        () => badRequest('wrong_types', 'top-null', 'null'),
        () => badRequest('wrong_types', 'top-bool', r.pick(['true', 'false'])),
        () => badRequest('wrong_types', 'top-string', r.pick(['"ping"', '"{\\"type\\":\\"ping\\"}"', '""'])),
        () => badRequest('wrong_types', 'top-empty-object', '{}'),
      ];
      return r.pick(cases)();
    },
  },
  {
    name: 'unknown_type',
    weight: 6,
    gen(r, c) {
      const id = c.nextId();
      const { world } = c;
      const variant = r.int(0, 3);
      if (variant === 0) {
        // A client trying to publish an event, or to send a control message.
        const frame = r.pick([
          { type: 'post_liked', channel: `post_${world.publicPostId}`, data: { postId: world.publicPostId, userId: c.userId, likesCount: 999999 }, id },
          { type: 'notification', channel: `notifications_${world.victimId}`, data: {}, id },
          { type: 'session_revoked', userId: world.victimId, sessionId: 'x', id },
          { type: 'user_deleted', userId: world.victimId, id },
          { type: 'entitlement_changed', cause: 'post_unlocked', subjects: [{ kind: 'post', postId: world.lockedPostId }], id },
          { type: 'publish', channel: `post_${world.publicPostId}`, data: {}, id },
        ]);
        return badRequest('unknown_type', `publish-${frame.type}`, J(frame), id);
      }
      const type =
        variant === 1
          ? randomUnicode(r, r.int(0, 12))
          : r.pick([
              'launch_rockets',
              'Subscribe',
              'SUBSCRIBE',
              'subscribe ',
              ' ping',
              'ping\u0000',
              'pıng',
              'pong',
              'connected',
              'subscribed',
              'unsubscribed',
              'refreshed',
              'error',
              'control',
              '',
              'x'.repeat(1000),
            ]);
      if (['ping', 'subscribe', 'unsubscribe', 'refresh'].includes(type)) return plan('unknown_type', 'skip', J({ type: 'ping', id }), { allowed: ['pong'], id });
      return badRequest('unknown_type', variant === 1 ? 'random' : 'named', J({ type, id }), id);
    },
  },
  {
    // Valid frames with one field too many (frames are strict objects).
    name: 'extra_fields',
    weight: 6,
    gen(r, c) {
      const id = c.nextId();
      const { world, userId } = c;
      const own = world.tokens.get(userId)![0]!;
      const frame = r.pick<Record<string, unknown>>([
        { type: 'ping', id, extra: true },
        { type: 'ping', id, ts: 123 },
        { type: 'ping', id, '': 1 },
        { type: 'subscribe', channel: `notifications_${userId}`, id, userId: world.victimId },
        { type: 'subscribe', channel: `notifications_${world.victimId}`, id, userId: world.victimId },
        { type: 'subscribe', channel: `post_${world.lockedPostId}`, id, token: own },
        { type: 'subscribe', channel: `feed_${userId}`, id, channels: [`feed_${world.victimId}`] },
        { type: 'subscribe', channel: `post_${world.publicPostId}`, id, admin: true },
        { type: 'unsubscribe', channel: `post_${world.publicPostId}`, id, all: true },
        { type: 'refresh', token: 'junk', id, force: true },
        { type: 'refresh', token: own, id, userId: world.victimId },
      ]);
      return badRequest('extra_fields', String(frame.type), J(frame), id);
    },
  },
  {
    // Prototype-pollution keys and names. JSON.parse makes `__proto__` an own key, so these must
    // be refused like any other unknown field, and nothing they carry may take effect.
    name: 'proto',
    weight: 5,
    gen(r, c) {
      const id = c.nextId();
      const ID = J(id);
      const { world } = c;
      const word = r.pick(PROTO_WORDS);
      const cases: Array<() => Plan> = [
        () => badRequest('proto', 'own-proto-frame', '{"__proto__":{"type":"ping","id":1}}'),
        () => badRequest('proto', 'own-proto-id', '{"type":"ping","__proto__":{"id":5}}'),
        () => badRequest('proto', 'proto-field', `{"type":"ping","id":${ID},"__proto__":{"admin":true}}`, id),
        () => badRequest('proto', 'proto-channel', `{"type":"subscribe","channel":"notifications_${world.victimId}","id":${ID},"__proto__":{"userId":"${world.victimId}"}}`, id),
        () => badRequest('proto', 'constructor-field', `{"constructor":{"prototype":{"polluted":true}},"type":"ping","id":${ID}}`, id),
        () => badRequest('proto', 'nested-proto', `{"type":"subscribe","channel":{"__proto__":{"length":1}},"id":${ID}}`, id),
        () => badRequest('proto', 'type-word', J({ type: word, id }), id),
        () => plan('proto', 'id-word', J({ type: 'ping', id: word }), { allowed: ['pong'], id: word }),
        () => plan('proto', 'subscribe-word', J({ type: 'subscribe', channel: word, id }), { allowed: ['error:invalid_channel'], id, channel: word }),
        () => plan('proto', 'unsubscribe-word', J({ type: 'unsubscribe', channel: word, id }), { allowed: ['error:not_subscribed'], id, channel: word }),
      ];
      return r.pick(cases)();
    },
  },
  {
    // Random valid UTF-8 text: control characters, astral planes, JSON punctuation.
    name: 'random_unicode',
    weight: 7,
    gen(r) {
      let text = randomUnicode(r, r.int(1, 200));
      try {
        JSON.parse(text);
        text = `\u0000${text}`; // parses (a number, say): make it garbage again
      } catch {
        // garbage, as intended
      }
      return badRequest('random_unicode', 'text', text);
    },
  },
  {
    // Random bytes in a text frame: bad_request when they happen to be UTF-8, else ws closes 1007.
    name: 'random_text',
    weight: 1,
    gen(r) {
      const length = r.int(1, 48);
      const bytes = r.chance(0.5) ? r.bytes(length) : Buffer.from(Array.from({ length }, () => (r.chance(0.92) ? r.int(0x20, 0x7e) : r.int(0, 255))));
      if (!isUtf8(bytes)) return plan('random_text', 'invalid-utf8', bytes, undefined, { close: 1007 });
      let valid = true;
      try {
        JSON.parse(bytes.toString('utf8'));
      } catch {
        valid = false;
      }
      const data = valid ? Buffer.concat([Buffer.from('\u0000'), bytes]) : bytes;
      return plan('random_text', 'utf8', data, { allowed: BAD_REQUEST });
    },
  },
  {
    name: 'binary',
    weight: 5,
    gen(r, c) {
      const { userId, world } = c;
      const variant = r.pick(['random', 'ping', 'subscribe-own', 'subscribe-foreign', 'invalid-utf8', 'empty'] as const);
      const data =
        variant === 'random'
          ? r.bytes(r.int(1, 256))
          : variant === 'ping'
            ? Buffer.from('{"type":"ping","id":1}')
            : variant === 'subscribe-own'
              ? Buffer.from(J({ type: 'subscribe', channel: `notifications_${userId}`, id: 1 }))
              : variant === 'subscribe-foreign'
                ? Buffer.from(J({ type: 'subscribe', channel: `notifications_${world.victimId}`, id: 1 }))
                : variant === 'invalid-utf8'
                  ? Buffer.from(r.pick(INVALID_UTF8))
                  : Buffer.alloc(0);
      // Binary frames are refused without reading them: no id is echoed, nothing is subscribed.
      return { kind: 'binary', sub: variant, data, binary: true, reply: { allowed: BAD_REQUEST } };
    },
  },
  {
    name: 'json_garbage',
    weight: 5,
    gen(r) {
      return badRequest('json_garbage', 'text', r.pick(JSON_GARBAGE));
    },
  },
  {
    name: 'invalid_utf8',
    weight: 0.3,
    gen(r) {
      const bad = Buffer.from(r.pick(INVALID_UTF8));
      const variant = r.pick(['alone', 'in-json-string', 'in-long-text', 'at-end'] as const);
      const data =
        variant === 'alone'
          ? bad
          : variant === 'in-json-string'
            ? Buffer.concat([Buffer.from('{"type":"ping","id":"'), bad, Buffer.from('"}')])
            : variant === 'in-long-text'
              ? Buffer.concat([Buffer.from('{"type":"subscribe","channel":"post_'), bad, Buffer.from('x'.repeat(r.int(0, 4000)) + '"}')])
              : Buffer.concat([Buffer.from('{"type":"ping"}'), bad]);
      return plan('invalid_utf8', variant, data, undefined, { close: 1007 });
    },
  },
  {
    // Deep nesting, up to what fits in maxPayload: the parser, the schema and every message the
    // server builds from a refused frame must cope.
    name: 'deep',
    weight: 2.5,
    gen(r, c) {
      const id = c.nextId();
      const ID = J(id);
      const variant = r.pick(['open-brackets', 'open-braces', 'balanced', 'type-field', 'channel-field', 'id-field', 'extra-field', 'objects', 'type-objects'] as const);
      const fit = (prefix: string, suffix: string, perLevel: number) => {
        const max = Math.floor((MAX_PAYLOAD - prefix.length - suffix.length - 1) / perLevel);
        return r.int(Math.min(500, max), max);
      };
      switch (variant) {
        case 'open-brackets':
          return badRequest('deep', variant, '['.repeat(10_000));
        case 'open-braces':
          return badRequest('deep', variant, '{"a":'.repeat(3_000));
        case 'balanced': {
          const depth = fit('', '', 2);
          return withNote(badRequest('deep', variant, nested(depth)), depth);
        }
        case 'type-field': {
          const [prefix, suffix] = ['{"type":', `,"id":${ID}}`];
          const depth = fit(prefix, suffix, 2);
          return withNote(badRequest('deep', variant, prefix + nested(depth) + suffix, id), depth);
        }
        case 'channel-field': {
          const [prefix, suffix] = ['{"type":"subscribe","channel":', `,"id":${ID}}`];
          const depth = fit(prefix, suffix, 2);
          return withNote(badRequest('deep', variant, prefix + nested(depth) + suffix, id), depth);
        }
        case 'id-field': {
          const [prefix, suffix] = ['{"type":"ping","id":', '}'];
          const depth = fit(prefix, suffix, 2);
          return withNote(badRequest('deep', variant, prefix + nested(depth) + suffix), depth);
        }
        case 'extra-field': {
          const [prefix, suffix] = [`{"type":"ping","id":${ID},"x":`, '}'];
          const depth = fit(prefix, suffix, 2);
          return withNote(badRequest('deep', variant, prefix + nested(depth) + suffix, id), depth);
        }
        case 'objects': {
          const [prefix, suffix] = [`{"type":"ping","id":${ID},"x":`, '}'];
          const depth = fit(prefix, suffix, 6);
          return withNote(badRequest('deep', variant, prefix + nestedObjects(depth) + suffix, id), depth);
        }
        case 'type-objects': {
          const [prefix, suffix] = ['{"type":', `,"id":${ID}}`];
          const depth = fit(prefix, suffix, 6);
          return withNote(badRequest('deep', variant, prefix + nestedObjects(depth) + suffix, id), depth);
        }
      }
    },
  },
  {
    // Exactly maxPayload bytes or a little under: accepted by ws, refused by the schema.
    name: 'huge_under',
    weight: 0.6,
    gen(r, c) {
      const id = c.nextId();
      const size = r.pick([MAX_PAYLOAD, MAX_PAYLOAD - 1, MAX_PAYLOAD - r.int(2, 4000)]);
      return hugeFrame(r, 'huge_under', size, id);
    },
  },
  {
    // Just over maxPayload and far over: ws closes with 1009.
    name: 'huge_over',
    weight: 0.25,
    gen(r, c) {
      const id = c.nextId();
      const size = r.pick([MAX_PAYLOAD + 1, MAX_PAYLOAD + 2, MAX_PAYLOAD + r.int(3, 1000), 2 * MAX_PAYLOAD, 4 * MAX_PAYLOAD, 16 * MAX_PAYLOAD]);
      return hugeFrame(r, 'huge_over', size, id);
    },
  },
  {
    // A refresh with a token that is not a valid session of this user: `unauthorized`, then 4001.
    name: 'refresh_junk',
    weight: 0.45,
    gen(r, c) {
      const id = c.nextId();
      const junk = r.pick(c.world.junkTokens.get(c.userId)!);
      const token = junk.token === '<random>' ? Buffer.from(r.bytes(r.int(1, 600))).toString('base64url') : junk.token;
      return plan('refresh_junk', junk.sub, J({ type: 'refresh', token, id }), { allowed: ['error:unauthorized'], id }, { close: 4001 });
    },
  },
];

function hugeFrame(r: Rng, kind: string, size: number, id: RequestId): Plan {
  const ID = J(id);
  const over = size > MAX_PAYLOAD;
  const variant = r.pick(['ping-pad', 'ping-pad-multibyte', 'subscribe-long-channel', 'refresh-long-token', 'array'] as const);
  let data: string;
  let echoed: RequestId | undefined = id;
  switch (variant) {
    case 'ping-pad':
      data = sized(size, `{"type":"ping","id":${ID},"pad":"`, '"}');
      break;
    case 'ping-pad-multibyte':
      data = sized(size, `{"type":"ping","id":${ID},"pad":"`, '"}', 'é');
      break;
    case 'subscribe-long-channel':
      data = sized(size, `{"type":"subscribe","id":${ID},"channel":"post_`, '"}');
      break;
    case 'refresh-long-token':
      data = sized(size, `{"type":"refresh","id":${ID},"token":"`, '"}');
      break;
    case 'array': {
      echoed = undefined;
      data = sized(size, '[', '0]', '0,');
      data = data.replace(/x+0\]$/, (m) => ' '.repeat(m.length - 2) + '0]');
      break;
    }
  }
  if (Buffer.byteLength(data) !== size) throw new Error(`hugeFrame: ${variant} is ${Buffer.byteLength(data)} bytes, not ${size}`);
  if (over) return plan(kind, variant, data, undefined, { close: 1009 });
  return plan(kind, variant, data, { allowed: BAD_REQUEST, ...(echoed === undefined ? {} : { id: echoed }) });
}

const TOTAL_WEIGHT = KINDS.reduce((sum, kind) => sum + kind.weight, 0);

function isExcluded(p: Plan): boolean {
  return EXCLUDE.some((rule) => rule === p.kind || rule === `${p.kind}:${p.sub}`);
}

function drawPlan(r: Rng, c: GenContext): Plan {
  for (let attempt = 0; attempt < 1000; attempt++) {
    let x = r.next() * TOTAL_WEIGHT;
    let kind = KINDS[KINDS.length - 1]!;
    for (const k of KINDS) {
      if (x < k.weight) {
        kind = k;
        break;
      }
      x -= k.weight;
    }
    // The model of held channels is changed by the generator: draw on a copy until kept.
    const held = new Set(c.held);
    const candidate = kind.gen(r, { ...c, held });
    if (isExcluded(candidate)) continue;
    c.held.clear();
    for (const channel of held) c.held.add(channel);
    checkPlan(candidate);
    return candidate;
  }
  throw new Error(`FUZZ_EXCLUDE=${EXCLUDE.join(',')} leaves nothing to send`);
}

/** Replies without an id must all be synchronous (bad_request, pong) for in-order matching. */
function checkPlan(p: Plan): void {
  if (p.reply && p.reply.id === undefined && p.reply.allowed.some((o) => o !== 'error:bad_request' && o !== 'pong')) {
    throw new Error(`generator bug: ${p.kind}:${p.sub} expects an asynchronous reply without an id`);
  }
  if (p.reply?.id !== undefined && !isEchoedId(p.reply.id)) throw new Error(`generator bug: ${p.kind}:${p.sub} expects an id that cannot be echoed`);
}

function preview(p: Plan): string {
  const bytes = typeof p.data === 'string' ? Buffer.from(p.data) : p.data;
  const shown = p.binary || !isUtf8(bytes) ? `0x${bytes.subarray(0, 48).toString('hex')}` : J(bytes.subarray(0, 160).toString('utf8'));
  return `${p.kind}:${p.sub}${p.note ? ` (${p.note})` : ''} ${p.binary ? 'binary' : 'text'} ${bytes.length} B ${shown}${bytes.length > 160 ? '…' : ''}`;
}

// ─── the run's bookkeeping ─────────────────────────────────────────────────────────────────────

class Counter {
  readonly #counts = new Map<string, number>();

  inc(key: string | number, by = 1): void {
    const k = String(key);
    this.#counts.set(k, (this.#counts.get(k) ?? 0) + by);
  }

  get(key: string): number {
    return this.#counts.get(key) ?? 0;
  }

  get total(): number {
    let t = 0;
    for (const v of this.#counts.values()) t += v;
    return t;
  }

  format(indent = '    '): string {
    return [...this.#counts.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${indent}${String(v).padStart(7)}  ${k}`)
      .join('\n');
  }
}

class Run {
  readonly framesByKind = new Counter();
  readonly framesBySub = new Counter();
  readonly replies = new Counter();
  readonly closes = new Counter();
  readonly pushes = new Counter();
  readonly violationsByType = new Counter();
  readonly violations: string[] = [];
  reconnects = 0;
  serverDied = false;

  constructor(
    readonly name: string,
    readonly server: ServerProcess,
    readonly world: World,
  ) {
    void server.exited.then(() => {
      this.serverDied = true;
    });
  }

  violation(type: string, detail: string): void {
    this.violationsByType.inc(type);
    if (this.violations.length < 60) this.violations.push(`[${type}] ${detail}`);
  }
}

type Pending = { plan: Plan; text: string };

/** The channels a fuzzing user may ever receive pushes of. */
function readableBy(world: World, userId: string): Set<string> {
  return new Set([`notifications_${userId}`, `feed_${userId}`, `post_${world.publicPostId}`, `creator_${world.creatorId}`]);
}

const REPLY_TYPES = new Set(['pong', 'subscribed', 'unsubscribed', 'refreshed', 'error']);

class FuzzConn {
  readonly ws: WebSocket;
  /** Channels this connection successfully subscribed to and has not left, in the order replies came. */
  readonly held = new Set<string>();
  readonly #byId = new Map<RequestId, Pending[]>();
  readonly #noId: Pending[] = [];
  readonly #readable: Set<string>;
  readonly #listeners = new Set<() => void>();
  readonly recent: string[] = [];
  outstanding = 0;
  connected = false;
  closeInfo: { code: number; reason: string } | undefined;
  /** A close the current frame must cause (checked by the slot), or a deliberate normal close. */
  expectingClose = false;

  constructor(
    readonly run: Run,
    readonly label: string,
    readonly userId: string,
    token: string,
  ) {
    this.#readable = readableBy(run.world, userId);
    this.ws = new WebSocket(run.server.url, [], { headers: { authorization: `Bearer ${token}` } });
    this.ws.on('error', () => {});
    this.ws.on('message', (data, isBinary) => this.#onMessage(data, isBinary));
    this.ws.once('close', (code, reason) => {
      this.closeInfo = { code, reason: reason.toString() };
      this.run.closes.inc(code);
      if (!this.expectingClose) {
        this.run.violation(
          'unexpected-close',
          `${this.label} closed with ${code} "${reason.toString()}" with ${this.outstanding} replies outstanding; last frames sent:\n      ${this.recent.join('\n      ')}`,
        );
      }
      this.#notify();
    });
  }

  closedWith(): { code: number; reason: string } | undefined {
    return this.closeInfo;
  }

  /** Pending expectations, for failure messages and crash isolation. */
  pending(): Pending[] {
    return [...this.#noId, ...[...this.#byId.values()].flat()];
  }

  waitFor(predicate: () => boolean, timeoutMs: number): Promise<boolean> {
    if (predicate()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = () => {
        if (!predicate()) return;
        cleanup();
        resolve(true);
      };
      const timer = setTimeout(() => {
        cleanup();
        resolve(false);
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.#listeners.delete(check);
      };
      this.#listeners.add(check);
    });
  }

  send(p: Plan): void {
    const text = preview(p);
    this.recent.push(text);
    if (this.recent.length > 6) this.recent.shift();
    this.run.framesByKind.inc(p.kind);
    this.run.framesBySub.inc(`${p.kind}:${p.sub}`);
    if (p.reply) {
      const pending = { plan: p, text };
      if (p.reply.id === undefined) this.#noId.push(pending);
      else {
        const list = this.#byId.get(p.reply.id);
        if (list) list.push(pending);
        else this.#byId.set(p.reply.id, [pending]);
      }
      this.outstanding++;
    }
    if (p.close !== undefined) this.expectingClose = true;
    this.ws.send(p.data, { binary: p.binary });
  }

  #notify(): void {
    for (const listener of [...this.#listeners]) listener();
  }

  #onMessage(data: RawData, isBinary: boolean): void {
    try {
      this.#handle(data, isBinary);
    } finally {
      this.#notify();
    }
  }

  #handle(data: RawData, isBinary: boolean): void {
    const run = this.run;
    const raw = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    if (isBinary) run.violation('binary-from-server', `${this.label}: ${raw.subarray(0, 100).toString('hex')}`);
    let frame: Frame;
    try {
      frame = JSON.parse(raw.toString('utf8')) as Frame;
    } catch {
      run.violation('non-json-from-server', `${this.label}: ${raw.subarray(0, 200).toString('utf8')}`);
      return;
    }
    if (typeof frame !== 'object' || frame === null || typeof frame.type !== 'string') {
      run.violation('malformed-server-frame', `${this.label}: ${raw.subarray(0, 200).toString('utf8')}`);
      return;
    }
    const f = frame as Record<string, unknown> & { type: string };
    if (f.type === 'connected') {
      if (this.connected || f.userId !== this.userId) run.violation('bad-connected', `${this.label}: ${J(f)}`);
      this.connected = true;
      return;
    }
    if (isEventType(f.type)) {
      const channel = String(f.channel);
      run.pushes.inc(`${f.type} on ${channel.split('_')[0]}${channel.endsWith(this.userId) ? ' (own)' : ''}`);
      if (!this.held.has(channel)) {
        run.violation('leak', `${this.label} (user ${this.userId}) received a push of ${channel}, which it does not hold (holds ${[...this.held].join(', ') || 'nothing'}): ${raw.subarray(0, 300).toString('utf8')}`);
      } else if (!this.#readable.has(channel)) {
        run.violation('leak', `${this.label} (user ${this.userId}) holds ${channel}, which it may not read: ${raw.subarray(0, 300).toString('utf8')}`);
      }
      return;
    }
    if (f.type === 'unsubscribed' && f.reason !== undefined) {
      // Server-ended subscription: nothing in this run changes access, so none is expected.
      this.held.delete(String(f.channel));
      run.violation('server-ended-subscription', `${this.label}: ${J(f)}`);
      return;
    }
    if (!REPLY_TYPES.has(f.type)) {
      run.violation('unknown-server-frame', `${this.label}: ${raw.subarray(0, 300).toString('utf8')}`);
      return;
    }
    const outcome: Outcome = f.type === 'error' ? `error:${String(f.code)}` : f.type;
    run.replies.inc(outcome);
    let pending: Pending | undefined;
    if ('id' in f) {
      const list = this.#byId.get(f.id as RequestId);
      if (list) {
        const index = Math.max(0, list.findIndex((p) => p.plan.reply!.allowed.includes(outcome)));
        pending = list.splice(index, 1)[0];
        if (list.length === 0) this.#byId.delete(f.id as RequestId);
      }
      if (!pending) {
        run.violation('reply-with-unknown-id', `${this.label} got ${raw.subarray(0, 300).toString('utf8')}; no frame with that id awaits a reply`);
        return;
      }
    } else {
      pending = this.#noId.shift();
      if (!pending) {
        run.violation('unexpected-reply', `${this.label} got ${raw.subarray(0, 300).toString('utf8')}; no frame without an id awaits a reply`);
        return;
      }
    }
    this.outstanding--;
    const expected = pending.plan.reply!;
    if (!expected.allowed.includes(outcome)) {
      run.violation(`wrong-reply:${pending.plan.kind}:${pending.plan.sub}`, `${this.label} sent ${pending.text}\n      expected ${expected.allowed.join(' | ')}, got ${raw.subarray(0, 300).toString('utf8')}`);
      return;
    }
    if ((outcome === 'subscribed' || outcome === 'unsubscribed') && f.channel !== expected.channel) {
      run.violation('reply-for-other-channel', `${this.label} sent ${pending.text}, got ${raw.subarray(0, 300).toString('utf8')}`);
      return;
    }
    if (outcome === 'subscribed') this.held.add(expected.channel!);
    if (outcome === 'unsubscribed') this.held.delete(expected.channel!);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function openFuzzConn(run: Run, label: string, userId: string): Promise<FuzzConn | undefined> {
  for (let attempt = 1; attempt <= 5 && !run.serverDied; attempt++) {
    const conn = new FuzzConn(run, label, userId, run.world.tokens.get(userId)![0]!);
    conn.expectingClose = true; // a failed connect is reported below, once
    const ok = await conn.waitFor(() => conn.connected || conn.closeInfo !== undefined, 10_000);
    if (ok && conn.connected && conn.closeInfo === undefined) {
      conn.expectingClose = false;
      return conn;
    }
    conn.ws.terminate();
    if (!run.serverDied) run.violation('connect-failed', `${label} attempt ${attempt}: ${conn.closeInfo ? `closed with ${conn.closeInfo.code} ${conn.closeInfo.reason}` : 'no connected frame in 10 s'}`);
    await sleep(200);
  }
  return undefined;
}

/** One connection slot: `quota` frames, reconnecting after every close the protocol documents. */
async function runSlot(run: Run, slot: number, userId: string, quota: number, seed: number, onSent: (p: Plan) => void): Promise<FuzzConn[]> {
  const rng = new Rng(seed);
  let nextId = 1;
  const held = new Set<string>();
  const ctx: GenContext = { world: run.world, userId, held, nextId: () => (rng.chance(0.7) ? nextId++ : `r${nextId++}`) };
  const label = (n: number) => `${run.name} slot ${slot} connection ${n}`;
  let generation = 1;
  const all: FuzzConn[] = [];
  let conn = await openFuzzConn(run, label(generation), userId);
  if (conn) all.push(conn);
  const reconnect = async () => {
    conn?.ws.terminate();
    held.clear(); // a new connection holds nothing
    run.reconnects++;
    conn = await openFuzzConn(run, label(++generation), userId);
    if (conn) all.push(conn);
  };
  let sent = 0;
  while (sent < quota && conn && !run.serverDied) {
    const c: FuzzConn = conn;
    const p = drawPlan(rng, ctx);
    if (p.close !== undefined) {
      // Everything sent before must be answered first: after the close nothing more is.
      if (!(await c.waitFor(() => c.outstanding === 0 || c.closeInfo !== undefined, REPLY_TIMEOUT_MS))) {
        run.violation('missing-reply', `${c.label}: ${c.outstanding} frames unanswered after ${REPLY_TIMEOUT_MS} ms:\n      ${c.pending().map((x) => x.text).join('\n      ')}`);
      }
      if (c.closeInfo !== undefined || run.serverDied) {
        await reconnect();
        continue;
      }
      c.send(p);
      onSent(p);
      sent++;
      await c.waitFor(() => c.closeInfo !== undefined, REPLY_TIMEOUT_MS);
      const info = c.closedWith();
      if (!info) run.violation('no-close', `${c.label} sent ${preview(p)}; expected close ${p.close}, still open after ${REPLY_TIMEOUT_MS} ms`);
      else if (info.code !== p.close && !run.serverDied) run.violation(`wrong-close:${p.kind}:${p.sub}`, `${c.label} sent ${preview(p)}; expected close ${p.close}, got ${info.code} "${info.reason}"`);
      if (c.outstanding > 0 && !run.serverDied) run.violation(`missing-reply:${p.kind}:${p.sub}`, `${c.label} closed with ${info?.code} before answering:\n      ${c.pending().map((x) => x.text).join('\n      ')}`);
      await reconnect();
      continue;
    }
    if (!(await c.waitFor(() => c.outstanding < WINDOW || c.closeInfo !== undefined, REPLY_TIMEOUT_MS))) {
      run.violation('missing-reply', `${c.label}: ${c.outstanding} frames unanswered after ${REPLY_TIMEOUT_MS} ms:\n      ${c.pending().map((x) => x.text).join('\n      ')}`);
      await reconnect();
      continue;
    }
    if (c.closeInfo !== undefined) {
      // Closed unexpectedly (reported by the close handler): carry on, on a new connection.
      await reconnect();
      continue;
    }
    c.send(p);
    onSent(p);
    sent++;
  }
  if (conn && !run.serverDied) {
    const c: FuzzConn = conn;
    if (!(await c.waitFor(() => c.outstanding === 0 || c.closeInfo !== undefined, REPLY_TIMEOUT_MS))) {
      run.violation('missing-reply', `${c.label}: ${c.outstanding} frames unanswered at the end:\n      ${c.pending().map((x) => x.text).join('\n      ')}`);
    }
    c.expectingClose = true;
    c.ws.close(1000);
    await c.waitFor(() => c.closeInfo !== undefined, 5_000);
    if (c.closeInfo === undefined) c.ws.terminate();
  }
  if (sent < quota && !run.serverDied) run.violation('slot-gave-up', `${label(generation)} sent ${sent} of ${quota} frames`);
  return all;
}

interface FuzzResult {
  sent: number;
  durationMs: number;
  /** Frames awaiting a reply or sent last when the server died: candidates for the culprit. */
  crashCandidates: Plan[];
}

async function fuzz(run: Run, slots: number, total: number, streamOffset: number, userFor: (slot: number) => string): Promise<FuzzResult> {
  const started = Date.now();
  let sent = 0;
  const lastSent: Plan[] = Array.from({ length: slots });
  const conns: FuzzConn[][] = [];
  await Promise.all(
    Array.from({ length: slots }, async (_, slot) => {
      const quota = Math.floor(total / slots) + (slot < total % slots ? 1 : 0);
      conns[slot] = await runSlot(run, slot, userFor(slot), quota, slotSeed(SEED, streamOffset + slot), (p) => {
        sent++;
        lastSent[slot] = p;
      });
    }),
  );
  const crashCandidates = run.serverDied ? [...conns.flat().flatMap((c) => c.pending().map((x) => x.plan)), ...lastSent.filter((p): p is Plan => p !== undefined)] : [];
  return { sent, durationMs: Date.now() - started, crashCandidates };
}

/** Replays candidate frames one by one against a fresh server, to name the one that kills it. */
async function isolateCrash(world: World, candidates: Plan[]): Promise<string> {
  const seen = new Set<string>();
  const unique = candidates.filter((p) => {
    const key = `${p.binary}:${typeof p.data === 'string' ? p.data : p.data.toString('hex')}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  const probe = await startServer({ env: SERVER_ENV });
  const userId = world.fuzzUserIds[0]!;
  const token = world.tokens.get(userId)![0]!;
  try {
    let client: TestClient | undefined;
    for (const p of unique.slice(0, 2_000)) {
      if (!client || client.ws.readyState !== WebSocket.OPEN) {
        client?.ws.terminate();
        client = await TestClient.connect(probe.url, { token });
      }
      const before = client.frames.length;
      const c: TestClient = client;
      c.sendRaw(p.data, { binary: p.binary });
      await Promise.race([c.closed, c.next((f) => c.frames.indexOf(f) >= before, 2_000).catch(() => undefined)]);
      await sleep(20);
      if (probe.child.exitCode !== null || probe.child.signalCode !== null) {
        return `replayed alone against a fresh server, this frame kills it:\n    ${preview(p)}\n  its last words:\n${lastWords(probe)}`;
      }
    }
    client?.close();
    return `none of ${unique.length} candidate frames kills a fresh server on its own`;
  } finally {
    await probe.stop();
  }
}

/** What a dead server wrote besides log entries (a stack trace), or the end of its log. */
function lastWords(server: ServerProcess): string {
  const lines = server.log().split('\n');
  const other = lines.filter((line) => line.trim() !== '' && !line.startsWith('{') && !line.startsWith('GC_HEAP '));
  return (other.length > 0 ? other : lines.slice(-10)).join('\n').slice(-2000);
}

// ─── server-side observations ──────────────────────────────────────────────────────────────────

type HeapReading = { heapUsed: number; heapTotal: number; rss: number; external: number; gc: boolean; spaces: Record<string, number> };

async function gcHeap(server: ServerProcess): Promise<HeapReading> {
  const from = server.log().length;
  server.child.kill('SIGUSR2');
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const match = /GC_HEAP (\{.*\})\n/.exec(server.log().slice(from));
    if (match) return JSON.parse(match[1]!) as HeapReading;
    await sleep(20);
  }
  throw new Error('the server did not report its heap within 10 s of SIGUSR2');
}

async function metricsHeapUsed(server: ServerProcess): Promise<number> {
  const text = await (await fetch(`${server.httpUrl}/metrics`)).text();
  const match = /^nodejs_heap_size_used_bytes(?:\{[^}]*\})? (\S+)$/m.exec(text);
  return match ? Number(match[1]) : NaN;
}

async function waitForConnections(server: ServerProcess, count: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let seen = -1;
  while (Date.now() < deadline) {
    const health = (await (await fetch(`${server.httpUrl}/health`)).json()) as { connections: number };
    seen = health.connections;
    if (seen === count) return seen;
    await sleep(100);
  }
  return seen;
}

const EXPECTED_WARNINGS = new Set(['ALLOWED_ORIGINS not set: any Origin is accepted (refused with NODE_ENV=production)']);

/**
 * Problems in the server's log. Nothing logged at error level is expected: every error log line in
 * websocket-server/src is a server-side failure (a write, a deadline handler, an HTTP or upgrade
 * handler that threw, a request that threw, the database during a handshake, a stuck shutdown),
 * never the answer to bad client input. Of the warnings, only the start-up note about
 * ALLOWED_ORIGINS is expected; the others (frame rate, slow consumer, malformed published event,
 * Redis, broker unsubscribe) would each mean the run did not test what it meant to.
 */
function logProblems(log: string): string[] {
  const problems: string[] = [];
  for (const line of log.split('\n')) {
    if (line.trim() === '' || line.startsWith('GC_HEAP ')) continue;
    let entry: { level?: string; message?: string };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      problems.push(`not a log entry: ${line.slice(0, 300)}`);
      continue;
    }
    if (/fatal|uncaught/i.test(line)) problems.push(`mentions fatal/uncaught: ${line.slice(0, 300)}`);
    else if (entry.level === 'error') problems.push(`error: ${line.slice(0, 300)}`);
    else if (entry.level === 'warn' && !EXPECTED_WARNINGS.has(entry.message ?? '')) problems.push(`unexpected warning: ${line.slice(0, 300)}`);
  }
  return problems;
}

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(2)} MiB`;

// ─── the test ──────────────────────────────────────────────────────────────────────────────────

describe('RealtimeServer › fuzzing', () => {
  let fixtures: Fixtures;
  let redis: Redis;
  let server: ServerProcess | undefined;
  let world: World;
  const others: TestClient[] = [];

  before(async function () {
    this.timeout(60_000);
    fixtures = new Fixtures();
    redis = new Redis(testRedisUrl());
    const creator = await fixtures.creator();
    const victim = await fixtures.user({ name: 'victim' });
    const fuzzUsers = await Promise.all(Array.from({ length: FUZZ_USERS }, (_, i) => fixtures.user({ name: `fuzz${i}` })));
    const publicPost = await fixtures.post(creator.id);
    const lockedPost = await fixtures.post(creator.id, { isLocked: true, requiredTier: 'VIP' });
    for (const user of [...fuzzUsers, victim]) {
      await fixtures.notification(user.id);
      await fixtures.notification(user.id, { isRead: true });
    }
    const tokens = new Map<string, string[]>();
    for (const user of [...fuzzUsers, victim, creator]) tokens.set(user.id, await Promise.all([0, 1, 2].map(() => mintSessionToken(user.id))));
    const key = deriveNextAuthKey(TEST_NEXTAUTH_SECRET);
    const now = Math.floor(Date.now() / 1000);
    const encrypt = (claims: Record<string, unknown>, exp: number | null) => {
      const jwt = new EncryptJWT(claims).setProtectedHeader({ alg: 'dir', enc: 'A256GCM' }).setIssuedAt();
      return (exp === null ? jwt : jwt.setExpirationTime(exp)).encrypt(key);
    };
    const junkTokens = new Map<string, Array<{ sub: string; token: string }>>();
    for (const [i, user] of fuzzUsers.entries()) {
      const own = tokens.get(user.id)![0]!;
      const parts = own.split('.');
      const flipped = parts.map((part, index) => (index === 3 ? (part[0] === 'A' ? 'B' : 'A') + part.slice(1) : part)).join('.');
      junkTokens.set(user.id, [
        { sub: 'random', token: '<random>' },
        { sub: 'jwe-shaped', token: `${Buffer.from('{"alg":"dir","enc":"A256GCM"}').toString('base64url')}..AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA` },
        { sub: 'alg-none', token: `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"x"}').toString('base64url')}.` },
        { sub: 'tampered', token: flipped },
        { sub: 'truncated', token: own.slice(0, -5) },
        { sub: 'wrong-secret', token: await mintSessionToken(user.id, { secret: 'not-the-server-secret-0123456789' }) },
        { sub: 'expired', token: await mintSessionToken(user.id, { maxAgeSeconds: -3600 }) },
        { sub: 'other-user', token: tokens.get(fuzzUsers[(i + 1) % fuzzUsers.length]!.id)![0]! },
        { sub: 'victim', token: tokens.get(victim.id)![0]! },
        { sub: 'unknown-user', token: await mintSessionToken('cunknownuser000000000000000') },
        { sub: 'no-subject', token: await encrypt({ name: 'x' }, now + 3600) },
        { sub: 'no-expiry', token: await encrypt({ sub: user.id }, null) },
        { sub: 'sub-object', token: await encrypt({ sub: { id: user.id } }, now + 3600) },
        { sub: 'proto-word', token: '__proto__' },
        { sub: 'max-length', token: 'a.b.c.d.' + 'e'.repeat(MAX_TOKEN - 8) },
        { sub: 'unicode', token: 'ä.ö.ü.🙂.\u0000' },
      ]);
    }
    world = {
      fuzzUserIds: fuzzUsers.map((u) => u.id),
      victimId: victim.id,
      creatorId: creator.id,
      publicPostId: publicPost.id,
      lockedPostId: lockedPost.id,
      tokens,
      junkTokens,
    };
    server = await startServer({ env: SERVER_ENV });
  });

  after(async function () {
    this.timeout(30_000);
    for (const client of others) client.close();
    await server?.stop();
    redis?.disconnect();
    await fixtures?.close();
  });

  it(`answers ${TOTAL_FRAMES.toLocaleString('en')} random and malformed frames over ${CONNECTIONS} connections with replies or documented closes, and stays up, leak-free and fair`, async function () {
    this.timeout(180_000);
    const srv = server!;
    console.log(`\n    fuzz seed: ${SEED} (replay with FUZZ_SEED=${SEED})${EXCLUDE.length ? `, excluding ${EXCLUDE.join(', ')}` : ''}`);
    const publicChannel = `post_${world.publicPostId}`;
    const redisChannel = (channel: string) => `${testRedisPrefix('ws:')}${channel}`;

    // Well-behaved clients: five watchers of the public post, the victim on their own channels,
    // the creator on the locked post and their creator channel.
    const watchers = await Promise.all(
      Array.from({ length: WATCHERS }, async () => {
        const user = await fixtures.user({ name: 'watcher' });
        const client = await TestClient.connect(srv.url, { token: await mintSessionToken(user.id) });
        await client.mustSubscribe(publicChannel);
        return client;
      }),
    );
    const victim = await TestClient.connect(srv.url, { token: world.tokens.get(world.victimId)![0]! });
    await victim.mustSubscribe(`notifications_${world.victimId}`);
    await victim.mustSubscribe(`feed_${world.victimId}`);
    const creator = await TestClient.connect(srv.url, { token: world.tokens.get(world.creatorId)![0]! });
    await creator.mustSubscribe(`post_${world.lockedPostId}`);
    await creator.mustSubscribe(`creator_${world.creatorId}`);
    others.push(...watchers, victim, creator);
    const steady = others.length;
    const latencies: number[] = [];
    for (const watcher of watchers) {
      watcher.ws.on('message', (data) => {
        const frame = JSON.parse(data.toString()) as { type: string; data?: { publishedAt?: number } };
        if (frame.type === 'post_liked' && typeof frame.data?.publishedAt === 'number') latencies.push(Date.now() - frame.data.publishedAt);
      });
    }

    // Warm-up, then the heap baseline.
    const warm = new Run('warm-up', srv, world);
    const warmResult = await fuzz(warm, WARMUP_SLOTS, WARMUP_SLOTS * WARMUP_FRAMES_PER_SLOT, 10_000, (slot) => world.fuzzUserIds[slot % FUZZ_USERS]!);
    if (warm.serverDied) {
      throw new Error(`the server died during the warm-up (seed ${SEED}):\n${lastWords(srv)}\n\n${await isolateCrash(world, warmResult.crashCandidates)}`);
    }
    expect(await waitForConnections(srv, steady, 10_000), 'connections after the warm-up').to.equal(steady);
    await sleep(1_500);
    const heapBefore = await gcHeap(srv);
    expect(heapBefore.gc, 'gc() exposed in the server (--expose-gc through NODE_OPTIONS)').to.equal(true);
    const metricsBefore = await metricsHeapUsed(srv);

    // Events through Redis for the whole run: the watchers' post, and bait on channels the
    // fuzzing users may not read (the victim's, the locked post) or only some of them may (each
    // fuzzing user's own).
    let published = 0;
    let publishing = true;
    const publisher = (async () => {
      while (publishing) {
        const seq = ++published;
        const target = world.fuzzUserIds[seq % FUZZ_USERS]!;
        const notification = (userId: string) => ({
          type: 'notification',
          data: { notification: { id: `n-${seq}`, type: 'LIKE', title: `for ${userId}`, message: 'secret', isRead: false, createdAt: new Date().toISOString() } },
          id: `n-${seq}`,
        });
        const pipeline = redis.pipeline();
        pipeline.publish(
          redisChannel(publicChannel),
          J({ type: 'post_liked', data: { postId: world.publicPostId, userId: 'fuzz-publisher', likesCount: seq, publishedAt: Date.now() }, id: `evt-${seq}` }),
        );
        pipeline.publish(redisChannel(`notifications_${world.victimId}`), J(notification(world.victimId)));
        pipeline.publish(redisChannel(`feed_${world.victimId}`), J({ type: 'feed_update', data: { reason: 'post_deleted', postId: `p-${seq}` }, id: `f-${seq}` }));
        pipeline.publish(redisChannel(`post_${world.lockedPostId}`), J({ type: 'post_liked', data: { postId: world.lockedPostId, userId: 'x', likesCount: seq }, id: `l-${seq}` }));
        pipeline.publish(redisChannel(`creator_${world.creatorId}`), J({ type: 'creator_updated', data: { creatorId: world.creatorId, name: `c${seq}` }, id: `c-${seq}` }));
        pipeline.publish(redisChannel(`notifications_${target}`), J(notification(target)));
        pipeline.publish(redisChannel(`feed_${target}`), J({ type: 'feed_update', data: { reason: 'post_deleted', postId: `p-${seq}` }, id: `t-${seq}` }));
        await pipeline.exec();
        await sleep(PUBLISH_EVERY_MS);
      }
    })();
    // The watchers keep talking too: a ping each every 250 ms, answered in time.
    let pinging = true;
    const pongs: number[] = [];
    const pingErrors: string[] = [];
    const pingers = watchers.map(async (watcher, i) => {
      while (pinging) {
        const sentAt = Date.now();
        try {
          const reply = await watcher.request({ type: 'ping' });
          if (reply.type !== 'pong') throw new Error(J(reply));
          pongs.push(Date.now() - sentAt);
        } catch (error) {
          pingErrors.push(`watcher ${i} got no pong: ${(error as Error).message.slice(0, 500)}`);
          return;
        }
        await sleep(250);
      }
    });

    const run = new Run('fuzz', srv, world);
    let result: FuzzResult;
    try {
      result = await fuzz(run, CONNECTIONS, TOTAL_FRAMES, 0, (slot) => world.fuzzUserIds[slot % FUZZ_USERS]!);
    } finally {
      publishing = false;
      pinging = false;
      await publisher;
    }
    await Promise.all(pingers);

    console.log(`    ${result.sent.toLocaleString('en')} frames in ${(result.durationMs / 1000).toFixed(1)} s over ${CONNECTIONS} connections, ${run.reconnects} reconnects; ${published} events published per channel`);
    console.log(`    frames per kind:\n${run.framesByKind.format()}`);
    if (process.env.FUZZ_VERBOSE) console.log(`    frames per kind:sub:\n${run.framesBySub.format()}`);
    console.log(`    replies per code:\n${run.replies.format()}`);
    console.log(`    close codes seen by the fuzzing connections:\n${run.closes.format()}`);
    console.log(`    pushes received by the fuzzing connections:\n${run.pushes.format()}`);

    // 1. The server is still up, and said nothing alarming.
    if (run.serverDied || srv.child.exitCode !== null) {
      throw new Error(
        `the server died during the fuzzing (seed ${SEED}, exit ${srv.child.exitCode}, signal ${srv.child.signalCode}):\n${lastWords(srv)}\n\n${await isolateCrash(world, result.crashCandidates)}`,
      );
    }
    expect((await fetch(`${srv.httpUrl}/health`)).status, '/health').to.equal(200);

    // 2. Every frame got its reply or its documented close, and nothing leaked.
    const violations = [...warm.violations, ...run.violations];
    if (violations.length > 0) {
      const counts = `${warm.violationsByType.format('      ')}\n${run.violationsByType.format('      ')}`.trimEnd();
      throw new Error(`${warm.violationsByType.total + run.violationsByType.total} violations (seed ${SEED}), by type:\n${counts}\n  the first ones:\n    ${violations.slice(0, 15).join('\n    ')}`);
    }
    expect(result.sent, 'frames sent').to.equal(TOTAL_FRAMES);
    for (const code of ['1006', '1011', '1013', '4002', '4003', '4029', '4030']) expect(run.closes.get(code), `closes with ${code}`).to.equal(0);

    // 3. The well-behaved clients received every event, in order, and every pong.
    expect(pingErrors, 'watchers’ pings').to.deep.equal([]);
    const expectedLikes = Array.from({ length: published }, (_, i) => i + 1);
    for (const [i, watcher] of watchers.entries()) {
      await watcher.next((f) => f.type === 'post_liked' && (f.data as { likesCount: number }).likesCount === published, 10_000).catch(() => undefined);
      const likes = watcher.pushes(publicChannel).map((f) => (f.data as { likesCount: number }).likesCount);
      expect(likes, `watcher ${i}: likesCount of every post_liked, in order`).to.deep.equal(expectedLikes);
      expect(watcher.pushes(publicChannel).map((f) => f.id), `watcher ${i}: event ids`).to.deep.equal(expectedLikes.map((n) => `evt-${n}`));
      expect(watcher.pushes().length, `watcher ${i}: pushes of other channels`).to.equal(published);
      expect(watcher.frames.filter((f) => f.type === 'error'), `watcher ${i}: errors`).to.deep.equal([]);
      expect(watcher.ws.readyState, `watcher ${i} still open`).to.equal(WebSocket.OPEN);
    }
    const inOrder = (client: TestClient, channel: string, prefix: string) =>
      client.next((f) => f.channel === channel && f.id === `${prefix}-${published}`, 10_000).then(
        () =>
          expect(
            client.pushes(channel).filter((f) => f.type !== 'unread_notifications').map((f) => f.id),
            `${channel}: every event, in order`,
          ).to.deep.equal(expectedLikes.map((n) => `${prefix}-${n}`)),
      );
    await inOrder(victim, `notifications_${world.victimId}`, 'n');
    await inOrder(victim, `feed_${world.victimId}`, 'f');
    await inOrder(creator, `post_${world.lockedPostId}`, 'l');
    await inOrder(creator, `creator_${world.creatorId}`, 'c');
    latencies.sort((a, b) => a - b);
    pongs.sort((a, b) => a - b);
    console.log(
      `    watchers: ${WATCHERS} × ${published} events, delivery latency p50 ${latencies[Math.floor(latencies.length / 2)]} ms, max ${latencies.at(-1)} ms; ` +
        `${pongs.length} pongs, round trip p50 ${pongs[Math.floor(pongs.length / 2)]} ms, max ${pongs.at(-1)} ms`,
    );

    // 4. Nothing of what the fuzzing sent took effect on the server: a fresh client sees the
    // ordinary replies and refusals, exactly shaped.
    const probe = await TestClient.connect(srv.url, { token: world.tokens.get(world.fuzzUserIds[0]!)![0]! });
    others.push(probe);
    const pong = await probe.request({ type: 'ping' });
    expect(Object.keys(pong).sort(), 'pong fields').to.deep.equal(['id', 'ts', 'type']);
    expect(await probe.subscribe(`notifications_${world.victimId}`)).to.deep.include({ type: 'error', code: 'forbidden' });
    expect(await probe.subscribe('__proto__')).to.deep.include({ type: 'error', code: 'invalid_channel' });
    probe.close();
    await probe.closed;

    // 5. The heap came back: same sockets open as at the baseline, after full collections.
    expect(await waitForConnections(srv, steady, 10_000), 'connections after the fuzzing').to.equal(steady);
    await sleep(1_500);
    const heapAfter = await gcHeap(srv);
    const metricsAfter = await metricsHeapUsed(srv);
    console.log(
      `    server heap used after GC: before ${mib(heapBefore.heapUsed)}, after ${mib(heapAfter.heapUsed)} ` +
        `(${heapAfter.heapUsed >= heapBefore.heapUsed ? '+' : '−'}${mib(Math.abs(heapAfter.heapUsed - heapBefore.heapUsed))}, margin ${mib(HEAP_MARGIN_BYTES)}); ` +
        `code space ${mib(heapBefore.spaces.code_space ?? 0)} → ${mib(heapAfter.spaces.code_space ?? 0)}, old space ${mib(heapBefore.spaces.old_space ?? 0)} → ${mib(heapAfter.spaces.old_space ?? 0)}; ` +
        `rss ${mib(heapBefore.rss)} → ${mib(heapAfter.rss)}; /metrics nodejs_heap_size_used_bytes ${mib(metricsBefore)} → ${mib(metricsAfter)}`,
    );
    expect(heapAfter.heapUsed, 'heap used after the fuzzing (bytes)').to.be.at.most(heapBefore.heapUsed + HEAP_MARGIN_BYTES);

    // 6. The log: no error, no unexpected warning, nothing but log entries.
    const problems = logProblems(srv.log());
    expect(problems.slice(0, 20), `${problems.length} problems in the server log`).to.deep.equal([]);
    expect(srv.child.exitCode, 'server still running').to.equal(null);
  });
});
