/**
 * Peer (b) of bench/compare: a plain Socket.IO 4 server on the websocket transport, with
 * @socket.io/redis-adapter, fed by @socket.io/redis-emitter from the harness. A client joins a
 * room with `emit('subscribe', channel, ack)`. No authentication (the project's server does a
 * JWE decryption and database reads per connection; this does none). Default ping interval
 * (25 s) and everything else as shipped.
 *
 * Env: REDIS_URL, SOCKETIO_KEY (the Redis key prefix shared with the emitter). Sends
 * {type:'listening', port} to the parent over IPC.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';

const pub = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const sub = pub.duplicate();
const http = createServer();
const io = new Server(http, {
  transports: ['websocket'],
  serveClient: false,
  perMessageDeflate: false,
  adapter: createAdapter(pub, sub, { key: process.env.SOCKETIO_KEY ?? 'socket.io' }),
});

io.on('connection', (socket) => {
  socket.on('subscribe', (channel: unknown, ack: unknown) => {
    if (typeof channel !== 'string') return;
    void socket.join(channel);
    if (typeof ack === 'function') (ack as (reply: unknown) => void)({ ok: true });
  });
});

await Promise.all([pub, sub].map((client) => (client.status === 'ready' ? undefined : new Promise((resolve) => client.once('ready', resolve)))));
http.listen(0, '127.0.0.1', () => process.send?.({ type: 'listening', port: (http.address() as AddressInfo).port }));

const stop = () => {
  io.close();
  pub.disconnect();
  sub.disconnect();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('disconnect', stop);
