/**
 * A client process of bench/scale, driven by the harness over IPC (./protocol.ts), in the manner
 * of bench/compare/client-worker.ts: its share of the connections from its own source address
 * (127.0.0.x), session tokens as bearer headers, latencies (now − the publisher's `s` stamp; one
 * machine, one clock) into mergeable histograms (bench/compare/support/histogram.ts).
 *
 * Unlike compare's clients these behave like the browser hook (hooks/realtime/client.ts) when
 * the server goes away: the close code decides (closeCodeAction: 1001 and the like reconnect,
 * 4001/4003 stop), the reconnect waits a full-jitter backoff (hooks/realtime/backoff.ts,
 * DEFAULT_BACKOFF; at least a `retry_after_ms=` hint), and every channel is subscribed again
 * with `since` its last applied position. `recovered: true` is followed by the replay; events
 * at or below the position are dropped as copies. Each client keeps only counters and its
 * positions, so 20,000 of them fit in one process.
 */
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { DEFAULT_BACKOFF, retryDelay } from '../../hooks/realtime/backoff.ts';
import { closeCodeAction, retryAfterFromReason } from '../../websocket-server/src/protocol/index.ts';
import { Histogram } from '../compare/support/histogram.ts';
import type { ClientSpec, CollectReply, ConnectReply, ConnectRequest, CountReply, WorkerReply, WorkerRequest } from './protocol.ts';

const now = () => performance.timeOrigin + performance.now();
const CONNECT_TIMEOUT_MS = 120_000;
/** The push types bench/scale.ts publishes. */
const COUNTED: ReadonlySet<string> = new Set(['notification', 'post_liked']);

interface Position {
  offset: number;
  epoch: string;
}

interface Client {
  spec: ClientSpec;
  index: number;
  ws: WebSocket | null;
  positions: Array<Position | null>;
  /** The `since` sent with the subscribe in flight, per slot (undefined: none sent). */
  sentSince: Array<Position | null | undefined>;
  pending: Array<number | undefined>;
  subscribed: boolean[];
  replayUntil: Array<number | undefined>;
  attempt: number;
  opened: boolean;
  ready: boolean;
  stopped: boolean;
  onFirstReady?: (error?: Error) => void;
}

let clients: Client[] = [];
let accepted: Int32Array[] = [];
let duplicates: number[] = [];
let gaps: number[] = [];
let closes = new Int32Array(0);
let lastCloseAt = new Float64Array(0);
let readyAgainAt = new Float64Array(0);
let failedAttempts = new Int32Array(0);
let recovered = 0;
let notRecovered = 0;
let stoppedClients = 0;
const closeCodes = new Map<string, number>();
const errors = new Map<string, number>();
const live = new Map<string, Histogram>();
let replayed = new Histogram();
let phase = 'connect';
let url = '';
let localAddress = '127.0.0.1';
let backoff = DEFAULT_BACKOFF;
let nextId = 1;
let shuttingDown = false;

const bump = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);

function grow(extra: number, slots: number): void {
  const size = clients.length + extra;
  const resized = <T extends Int32Array | Float64Array>(old: T, make: (n: number) => T): T => {
    const next = make(size);
    next.set(old);
    return next;
  };
  closes = resized(closes, (n) => new Int32Array(n));
  lastCloseAt = resized(lastCloseAt, (n) => new Float64Array(n));
  readyAgainAt = resized(readyAgainAt, (n) => new Float64Array(n));
  failedAttempts = resized(failedAttempts, (n) => new Int32Array(n));
  for (let slot = 0; slot < slots; slot++) {
    accepted[slot] = resized(accepted[slot] ?? new Int32Array(0), (n) => new Int32Array(n));
    duplicates[slot] ??= 0;
    gaps[slot] ??= 0;
  }
}

function open(client: Client): void {
  if (client.stopped || shuttingDown) return;
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${client.spec.token}` }, localAddress, perMessageDeflate: false });
  client.ws = ws;
  client.opened = false;
  ws.on('error', () => {});
  ws.on('message', (raw) => {
    if (client.ws !== ws) return;
    let frame: Record<string, unknown>;
    try {
      frame = JSON.parse(raw.toString()) as Record<string, unknown>;
    } catch {
      return;
    }
    onFrame(client, frame);
  });
  ws.once('close', (code, reason) => {
    if (client.ws !== ws) return;
    onClose(client, code, reason.toString());
  });
}

function onClose(client: Client, code: number, reason: string): void {
  const wasOpen = client.opened;
  client.ws = null;
  client.opened = false;
  client.ready = false;
  client.subscribed.fill(false);
  client.pending.fill(undefined);
  client.replayUntil.fill(undefined);
  if (shuttingDown || client.stopped) return;
  if (wasOpen) {
    closes[client.index]!++;
    lastCloseAt[client.index] = now();
    bump(closeCodes, String(code));
  } else {
    failedAttempts[client.index]!++;
    bump(errors, `attempt failed (${code})`);
  }
  if (closeCodeAction(code) !== 'reconnect') {
    client.stopped = true;
    stoppedClients++;
    client.onFirstReady?.(new Error(`closed ${code} ${reason}`));
    return;
  }
  const delay = retryDelay(client.attempt, retryAfterFromReason(reason), backoff);
  client.attempt = Math.min(client.attempt + 1, 10);
  setTimeout(() => open(client), delay);
}

function subscribe(client: Client, slot: number): void {
  const ws = client.ws;
  if (!ws || ws.readyState !== WebSocket.OPEN) return;
  const id = nextId++;
  client.pending[slot] = id;
  const since = client.positions[slot];
  client.sentSince[slot] = since;
  ws.send(JSON.stringify(since ? { type: 'subscribe', channel: client.spec.channels[slot], id, since } : { type: 'subscribe', channel: client.spec.channels[slot], id }));
}

function maybeReady(client: Client): void {
  if (client.ready || !client.opened) return;
  for (let slot = 0; slot < client.spec.channels.length; slot++) {
    if (!client.subscribed[slot] || client.replayUntil[slot] !== undefined) return;
  }
  client.ready = true;
  client.attempt = 0;
  if (closes[client.index]! > 0) readyAgainAt[client.index] = now();
  client.onFirstReady?.();
  client.onFirstReady = undefined;
}

function onFrame(client: Client, frame: Record<string, unknown>): void {
  const type = frame.type;
  if (type === 'connected') {
    client.opened = true;
    for (let slot = 0; slot < client.spec.channels.length; slot++) subscribe(client, slot);
    return;
  }
  if (type === 'broadcast' && frame.channel === 'broadcast') {
    // An operator broadcast reaches every socket without a subscription (and without a
    // position): counted in the slot after the client's channels.
    const slot = client.spec.channels.length;
    accepted[slot]![client.index]!++;
    const sentAt = (frame.data as { s?: unknown } | undefined)?.s;
    if (typeof sentAt === 'number') {
      let histogram = live.get(phase);
      if (!histogram) live.set(phase, (histogram = new Histogram()));
      histogram.add(now() - sentAt);
    }
    return;
  }
  const slot = typeof frame.channel === 'string' ? client.spec.channels.indexOf(frame.channel) : -1;
  if (slot < 0) return;
  if (type === 'subscribed') {
    if (frame.id !== client.pending[slot]) return;
    client.pending[slot] = undefined;
    client.subscribed[slot] = true;
    const position = { offset: Number(frame.offset), epoch: String(frame.epoch) };
    const since = client.sentSince[slot];
    if (!since) client.positions[slot] = position;
    else if (frame.recovered === true) {
      recovered++;
      if (position.offset > since.offset) client.replayUntil[slot] = position.offset;
    } else {
      // The history could not cover the gap: a real client reloads from the database; what it
      // missed shows up as fewer accepted events than the publisher sent.
      notRecovered++;
      client.positions[slot] = position;
    }
    maybeReady(client);
    return;
  }
  if (type === 'unsubscribed' && frame.id === undefined) {
    client.subscribed[slot] = false;
    client.ready = false;
    if (frame.reason === 'resubscribe') subscribe(client, slot);
    else bump(errors, `unsubscribed: ${String(frame.reason)}`);
    return;
  }
  if (type === 'error') {
    if (frame.id !== client.pending[slot]) return;
    client.pending[slot] = undefined;
    bump(errors, `subscribe error ${String(frame.code)}`);
    if (frame.code === 'rate_limited' || frame.code === 'internal_error') setTimeout(() => subscribe(client, slot), Number(frame.retryAfterMs ?? 500));
    return;
  }
  // Only the events this bench publishes count; the state a subscribe pushes by itself
  // (unread_notifications, viewers, creator_presence) is not a delivery.
  if (!COUNTED.has(String(type)) || typeof frame.offset !== 'number' || typeof frame.epoch !== 'string') return;
  const at = client.positions[slot];
  const offset = frame.offset;
  if (at && frame.epoch === at.epoch && offset <= at.offset) {
    duplicates[slot]!++;
    return;
  }
  if (at && (frame.epoch !== at.epoch || offset !== at.offset + 1)) gaps[slot]!++;
  client.positions[slot] = { offset, epoch: frame.epoch };
  accepted[slot]![client.index]!++;
  const sentAt = (frame.data as { s?: unknown } | undefined)?.s;
  const replaying = client.replayUntil[slot] !== undefined;
  if (typeof sentAt === 'number') {
    const latency = now() - sentAt;
    if (replaying) replayed.add(latency);
    else {
      let histogram = live.get(phase);
      if (!histogram) live.set(phase, (histogram = new Histogram()));
      histogram.add(latency);
    }
  }
  if (replaying && offset >= client.replayUntil[slot]!) {
    client.replayUntil[slot] = undefined;
    maybeReady(client);
  }
}

async function connect(request: ConnectRequest): Promise<ConnectReply> {
  const started = performance.now();
  url = request.url;
  localAddress = request.localAddress;
  backoff = request.backoff ?? DEFAULT_BACKOFF;
  const slots = request.clients[0]?.channels.length ?? 0;
  const base = clients.length;
  grow(request.clients.length, slots + 1);
  const batch = request.clients.map<Client>((spec, i) => ({
    spec,
    index: base + i,
    ws: null,
    positions: spec.channels.map(() => null),
    sentSince: spec.channels.map(() => undefined),
    pending: spec.channels.map(() => undefined),
    subscribed: spec.channels.map(() => false),
    replayUntil: spec.channels.map(() => undefined),
    attempt: 0,
    opened: false,
    ready: false,
    stopped: false,
  }));
  clients.push(...batch);
  const readyMs = new Histogram();
  let opened = 0;
  let failed = 0;
  const one = (client: Client) =>
    new Promise<void>((resolve) => {
      const t0 = performance.now();
      const timer = setTimeout(() => client.onFirstReady?.(new Error('timeout')), CONNECT_TIMEOUT_MS);
      client.onFirstReady = (error) => {
        clearTimeout(timer);
        client.onFirstReady = undefined;
        if (error) {
          failed++;
          bump(errors, `connect: ${error.message}`);
        } else {
          opened++;
          readyMs.add(performance.now() - t0);
        }
        resolve();
      };
      open(client);
    });
  let next = 0;
  const lane = async () => {
    while (next < batch.length) await one(batch[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(request.concurrency, batch.length) }, lane));
  return { opened, failed, errors: Object.fromEntries(errors), seconds: (performance.now() - started) / 1000, readyMs: readyMs.toJSON() };
}

function handle(request: WorkerRequest): Promise<WorkerReply> | WorkerReply {
  switch (request.cmd) {
    case 'connect':
      return connect(request) as unknown as Promise<WorkerReply>;
    case 'phase':
      phase = request.name;
      return {};
    case 'count': {
      const reply: CountReply = { accepted: accepted.map((counts) => counts.reduce((a, b) => a + b, 0)), ready: clients.filter((c) => c.ready).length };
      return reply as unknown as WorkerReply;
    }
    case 'collect': {
      const reply: CollectReply = {
        accepted: accepted.map((counts) => Array.from(counts)),
        duplicates,
        gaps,
        recovered,
        notRecovered,
        closes: Array.from(closes),
        lastCloseAt: Array.from(lastCloseAt),
        readyAgainAt: Array.from(readyAgainAt),
        failedAttempts: Array.from(failedAttempts),
        closeCodes: Object.fromEntries(closeCodes),
        live: Object.fromEntries([...live].map(([name, histogram]) => [name, histogram.toJSON()])),
        replayed: replayed.toJSON(),
        errors: Object.fromEntries(errors),
        stopped: stoppedClients,
      };
      return reply as unknown as WorkerReply;
    }
    case 'close':
      shuttingDown = true;
      for (const client of clients) client.ws?.terminate();
      clients = [];
      accepted = [];
      duplicates = [];
      gaps = [];
      replayed = new Histogram();
      live.clear();
      return new Promise((resolve) => setTimeout(() => resolve({}), 200));
  }
}

process.on('message', (message: { id: number } & WorkerRequest) => {
  Promise.resolve()
    .then(() => handle(message))
    .then(
      (reply) => process.send?.({ id: message.id, ok: true, ...reply }),
      (error: Error) => process.send?.({ id: message.id, ok: false, error: error.stack ?? error.message }),
    );
});
process.on('disconnect', () => process.exit(0));
process.send?.({ id: 0, ok: true, ready: true });
