/**
 * The real server entry (websocket-server/src/main.ts), plus a SIGUSR2 handler that runs a full
 * garbage collection and prints `MEM {…}` to stderr: only for bench/memory.ts, started with
 * --expose-gc, so that memory is read without the garbage a handshake leaves behind. With
 * HEAP_SNAPSHOT_DIR set (bench/heap-census.ts) it also writes a heap snapshot there and prints
 * `SNAP {file, rss, heapUsed}`.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';

let snapshots = 0;
process.on('SIGUSR2', () => {
  (globalThis as { gc?: () => void }).gc?.();
  const { rss, heapUsed, external } = process.memoryUsage();
  process.stderr.write(`MEM ${JSON.stringify({ rss, heapUsed, external })}\n`);
  const dir = process.env.HEAP_SNAPSHOT_DIR;
  if (dir) {
    mkdirSync(dir, { recursive: true });
    const file = writeHeapSnapshot(join(dir, `${++snapshots}.heapsnapshot`));
    process.stderr.write(`SNAP ${JSON.stringify({ file, rss, heapUsed })}\n`);
  }
});
await import('../../websocket-server/src/main.ts');

export {};
