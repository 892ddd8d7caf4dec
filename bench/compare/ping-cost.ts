/**
 * What one heartbeat tick costs: N `ws` connections to a local server, then `ws.ping()` on each
 * server-side socket in one loop, as the project's heartbeat does for one slice of its sockets
 * (websocket-server/src/server.ts, #beat). Prints the loop's wall time and the process's CPU time,
 * then the same for reading the N pongs.
 *
 *   npx tsx bench/compare/ping-cost.ts [--connections 1000] [--rounds 5]
 */
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import WebSocket, { WebSocketServer } from 'ws';

const { values } = parseArgs({ options: { connections: { type: 'string', default: '1000' }, rounds: { type: 'string', default: '5' } } });
const N = Number(values.connections);
const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
await new Promise((resolve) => wss.once('listening', resolve));
const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
const serverSockets: WebSocket[] = [];
wss.on('connection', (ws) => serverSockets.push(ws));
const clients: WebSocket[] = [];
for (let i = 0; i < N; i += 100) {
  await Promise.all(
    Array.from({ length: Math.min(100, N - i) }, () => new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false });
      clients.push(ws);
      ws.once('open', () => resolve());
      ws.once('error', reject);
    })),
  );
}
while (serverSockets.length < N) await new Promise((resolve) => setTimeout(resolve, 10));

const cpu = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};
for (let round = 1; round <= Number(values.rounds); round++) {
  let pongs = 0;
  const allPonged = new Promise<void>((resolve) => {
    for (const ws of serverSockets) ws.once('pong', () => ++pongs === N && resolve());
  });
  const c0 = cpu();
  const t0 = performance.now();
  for (const ws of serverSockets) ws.ping();
  const t1 = performance.now();
  const c1 = cpu();
  await allPonged;
  const t2 = performance.now();
  const c2 = cpu();
  console.log(`round ${round}: ${N} pings in one turn: ${(t1 - t0).toFixed(1)} ms wall, ${(c1 - c0).toFixed(1)} ms CPU (${((1000 * (c1 - c0)) / N).toFixed(1)} µs each); ` +
    `then the pongs (and the clients answering, same process): ${(t2 - t1).toFixed(1)} ms wall, ${(c2 - c1).toFixed(1)} ms CPU`);
  await new Promise((resolve) => setTimeout(resolve, 300));
}
for (const ws of clients) ws.terminate();
wss.close();
