/**
 * A client process of bench/compare, driven by the harness over IPC (see ./protocol.ts). It opens
 * its share of the connections from its own source address (`localAddress`, 127.0.0.x), counts
 * every delivery per connection and records the latency of each (now − the publisher's `s`
 * stamp; one machine, one clock) into a histogram. Speaks the three servers' protocols:
 * the project's (bearer JWE, `subscribe` frame), Socket.IO's (socket.io-client, websocket
 * transport), and the raw ws peer's.
 */
import { performance } from 'node:perf_hooks';
import { io as ioClient, type Socket as IoSocket } from 'socket.io-client';
import WebSocket from 'ws';
import { Histogram } from './support/histogram.ts';
import type { ConnectRequest, WorkerReply, WorkerRequest } from './protocol.ts';

const now = () => performance.timeOrigin + performance.now();

interface Client {
  close(): void;
}

let clients: Client[] = [];
let counts = new Int32Array(0);
let event = '';
let histogram = new Histogram();
let slowMs = Infinity;
let slow: Array<[number, number]> = [];
let pings: number[] = [];
let dropped = 0;
let recording = false;

const MAX_SLOW = 50_000;
const MAX_PINGS = 200_000;
const CONNECT_TIMEOUT_MS = 60_000;

function record(index: number, sentAt: unknown): void {
  if (!recording) return;
  counts[index] = (counts[index] ?? 0) + 1;
  if (typeof sentAt !== 'number') return;
  const latency = now() - sentAt;
  histogram.add(latency);
  if (latency >= slowMs && slow.length < MAX_SLOW) slow.push([sentAt, latency]);
}

/** Opens one connection and resolves once it is subscribed; rejects with a short reason. */
function open(request: ConnectRequest, index: number, spec: ConnectRequest['conns'][number]): Promise<Client> {
  return new Promise((resolve, reject) => {
    let ready = false;
    const timer = setTimeout(() => fail('timeout'), CONNECT_TIMEOUT_MS);
    const fail = (reason: string) => {
      clearTimeout(timer);
      if (!ready) reject(new Error(reason));
    };
    const succeed = (client: Client) => {
      clearTimeout(timer);
      ready = true;
      resolve(client);
    };

    if (request.target === 'socketio') {
      const options: Record<string, unknown> = {
        transports: ['websocket'],
        localAddress: request.localAddress,
        reconnection: false,
        forceNew: true,
        timeout: CONNECT_TIMEOUT_MS,
        perMessageDeflate: false,
      };
      const socket: IoSocket = ioClient(request.url, options);
      const client = { close: () => socket.disconnect() };
      socket.on('connect', () => {
        socket.emit('subscribe', spec.channel, () => succeed(client));
      });
      socket.on(request.event, (data: { s?: unknown }) => record(index, data?.s));
      socket.on('connect_error', (error: Error) => fail(`connect_error ${error.message}`));
      socket.on('disconnect', (reason: string) => {
        if (ready) dropped++;
        else fail(`disconnect ${reason}`);
      });
      return;
    }

    const headers: Record<string, string> = spec.token ? { authorization: `Bearer ${spec.token}` } : {};
    const ws = new WebSocket(request.url, { headers, localAddress: request.localAddress, perMessageDeflate: false });
    const client = { close: () => ws.terminate() };
    const subscribe = () => ws.send(JSON.stringify({ type: 'subscribe', channel: spec.channel, id: 1 }));
    if (request.target === 'raw') ws.on('open', subscribe);
    ws.on('ping', () => {
      if (pings.length < MAX_PINGS) pings.push(now());
    });
    ws.on('message', (raw) => {
      const frame = JSON.parse(raw.toString()) as { type?: string; data?: { s?: unknown }; code?: string; message?: string };
      if (frame.type === request.event) record(index, frame.data?.s);
      else if (frame.type === 'connected') subscribe();
      else if (frame.type === 'subscribed') succeed(client);
      else if (frame.type === 'error') fail(`error ${frame.code}: ${frame.message}`);
      else if (frame.type === 'unsubscribed' && ready) dropped++;
    });
    ws.on('error', (error) => fail(`ws error ${error.message}`));
    ws.on('unexpected-response', (_req, res) => fail(`http ${res.statusCode}`));
    ws.on('close', (code) => {
      if (ready) dropped++;
      else fail(`closed ${code}`);
    });
  });
}

async function connect(request: ConnectRequest): Promise<WorkerReply> {
  const started = performance.now();
  const base = clients.length;
  const grown = new Int32Array(base + request.conns.length);
  grown.set(counts);
  counts = grown;
  event = request.event;
  const errors = new Map<string, number>();
  let opened = 0;
  let failed = 0;
  const one = async (i: number) => {
    try {
      clients[base + i] = await open(request, base + i, request.conns[i]!);
      opened++;
    } catch (error) {
      failed++;
      const reason = (error as Error).message;
      errors.set(reason, (errors.get(reason) ?? 0) + 1);
      clients[base + i] = { close: () => {} };
    }
  };
  if (request.ratePerSecond) {
    // A steady rate: connection i starts at i / rate seconds, however long the others take.
    const pending: Promise<void>[] = [];
    const t0 = performance.now();
    for (let i = 0; i < request.conns.length; i++) {
      const wait = t0 + (i * 1000) / request.ratePerSecond - performance.now();
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
      pending.push(one(i));
    }
    await Promise.all(pending);
  } else {
    let next = 0;
    const lane = async () => {
      while (next < request.conns.length) await one(next++);
    };
    await Promise.all(Array.from({ length: Math.min(request.concurrency, request.conns.length) }, lane));
  }
  return { opened, failed, errors: Object.fromEntries(errors), seconds: (performance.now() - started) / 1000 };
}

async function handle(request: WorkerRequest): Promise<WorkerReply> {
  switch (request.cmd) {
    case 'connect':
      return connect(request);
    case 'reset':
      counts.fill(0);
      histogram = new Histogram();
      slow = [];
      pings = [];
      dropped = 0;
      slowMs = request.slowMs ?? Infinity;
      event = request.event ?? event;
      recording = true;
      return {};
    case 'count': {
      let total = 0;
      for (const count of counts) total += count;
      return { total, dropped };
    }
    case 'collect':
      recording = false;
      return { counts: Array.from(counts), histogram: histogram.toJSON(), slow, pings, dropped, event };
    case 'close': {
      for (const client of clients) client.close();
      clients = [];
      counts = new Int32Array(0);
      recording = false;
      // Let the closes reach the kernel before the harness stops the server.
      await new Promise((resolve) => setTimeout(resolve, 200));
      return {};
    }
  }
}

process.on('message', (message: { id: number } & WorkerRequest) => {
  handle(message).then(
    (reply) => process.send?.({ id: message.id, ok: true, ...reply }),
    (error: Error) => process.send?.({ id: message.id, ok: false, error: error.stack ?? error.message }),
  );
});
process.on('disconnect', () => process.exit(0));
process.send?.({ id: 0, ok: true, ready: true });
