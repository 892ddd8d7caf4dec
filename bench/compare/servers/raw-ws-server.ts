/**
 * Peer (c) of bench/compare: about the least a `ws` + ioredis fan-out server can do. One Redis
 * SUBSCRIBE per channel that has a local member (as the project's server does); each message is
 * framed once (ws's `Sender.frame`) and the same bytes are written to every member's socket,
 * corked for the rest of the event-loop turn so a burst costs one write per socket per turn. No
 * authentication, no validation, no heartbeat, no limits.
 *
 * Client frames: `{"type":"subscribe","channel":…}` → `{"type":"subscribed","channel":…}`.
 * Env: REDIS_URL, REDIS_CHANNEL_PREFIX. Sends {type:'listening', port} to the parent over IPC.
 */
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Redis } from 'ioredis';
import * as wsModule from 'ws';
import { WebSocketServer, type WebSocket } from 'ws';

// ws exports Sender (its frame encoder) but @types/ws does not declare it.
type FrameOptions = { fin: boolean; rsv1: boolean; opcode: number; mask: boolean; readOnly: boolean };
const { Sender } = wsModule as unknown as { Sender: { frame(data: Buffer, options: FrameOptions): Buffer[] } };

const prefix = process.env.REDIS_CHANNEL_PREFIX ?? 'raw:';
const sub = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const http = createServer();
const wss = new WebSocketServer({ server: http, perMessageDeflate: false, clientTracking: false, maxPayload: 16 * 1024 });
const members = new Map<string, Set<WebSocket>>();
const corked = new Set<Socket>();
let uncorkScheduled = false;

const socketOf = (ws: WebSocket) => (ws as unknown as { _socket: Socket })._socket;

sub.on('messageBuffer', (channelBuffer: Buffer, payload: Buffer) => {
  const set = members.get(channelBuffer.toString('latin1').slice(prefix.length));
  if (!set) return;
  const frame = Buffer.concat(Sender.frame(payload, { fin: true, rsv1: false, opcode: 1, mask: false, readOnly: false }));
  for (const ws of set) {
    const socket = socketOf(ws);
    if (!corked.has(socket)) {
      socket.cork();
      corked.add(socket);
    }
    socket.write(frame);
  }
  if (!uncorkScheduled) {
    uncorkScheduled = true;
    setImmediate(() => {
      uncorkScheduled = false;
      for (const socket of corked) socket.uncork();
      corked.clear();
    });
  }
});

wss.on('connection', (ws) => {
  const mine = new Set<string>();
  ws.on('message', (data) => {
    let frame: { type?: unknown; channel?: unknown };
    try {
      frame = JSON.parse(String(data)) as typeof frame;
    } catch {
      return;
    }
    if (frame.type !== 'subscribe' || typeof frame.channel !== 'string') return;
    const channel = frame.channel;
    let set = members.get(channel);
    const first = !set;
    if (!set) members.set(channel, (set = new Set()));
    set.add(ws);
    mine.add(channel);
    const reply = () => ws.send(JSON.stringify({ type: 'subscribed', channel }));
    if (first) sub.subscribe(prefix + channel).then(reply, () => ws.close(1011));
    else reply();
  });
  ws.on('close', () => {
    corked.delete(socketOf(ws));
    for (const channel of mine) {
      const set = members.get(channel);
      set?.delete(ws);
      if (set?.size === 0) {
        members.delete(channel);
        void sub.unsubscribe(prefix + channel).catch(() => {});
      }
    }
  });
  ws.on('error', () => ws.terminate());
});

await (sub.status === 'ready' ? undefined : new Promise((resolve) => sub.once('ready', resolve)));
http.listen(0, '127.0.0.1', () => process.send?.({ type: 'listening', port: (http.address() as AddressInfo).port }));

const stop = () => {
  sub.disconnect();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('disconnect', stop);
