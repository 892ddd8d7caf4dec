// Preloaded into a server process started by startServer (test/support/server-process.ts), through
// its environment: NODE_OPTIONS="--expose-gc --import <this file>". On SIGUSR2 it runs full
// garbage collections (~150 ms) and writes one line to stderr, which the test reads from the
// server's log:
//
//   GC_HEAP {"heapUsed":…,"heapTotal":…,"rss":…,"external":…,"arrayBuffers":…,"gc":true,"spaces":{…}}
//
// (`spaces`: bytes used per V8 heap space, e.g. code_space for compiled code.)
//
// So a test can read the heap without the garbage a run leaves behind, without changing
// websocket-server/src (bench/support/server-with-gc.ts does the same for the benchmark, as a
// wrapper entry instead). With GC_HEAP_SNAPSHOT_DIR set, each signal also writes a heap snapshot
// there (the line then names it), to compare two with Chrome DevTools. Plain JavaScript because
// NODE_OPTIONS preloads run before tsx is registered, and in the module-loader worker thread too,
// where signals cannot be handled.
import { join } from 'node:path';
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';
import { isMainThread } from 'node:worker_threads';

let snapshots = 0;

if (isMainThread) {
  process.on('SIGUSR2', () => void collectAndReport());
}

async function collectAndReport() {
  const gc = globalThis.gc;
  if (typeof gc === 'function') {
    // Several collections a few event-loop turns apart: native handles (a closed socket's TCP
    // wrap) are released by weak callbacks that run as tasks after a collection, and what they
    // held is only collectable by the next one.
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    gc();
  }
  const { heapUsed, heapTotal, rss, external, arrayBuffers } = process.memoryUsage();
  const spaces = Object.fromEntries(getHeapSpaceStatistics().map((space) => [space.space_name, space.space_used_size]));
  // For looking into a growth: GC_HEAP_SNAPSHOT_DIR=<dir> also writes a heap snapshot each time.
  const dir = process.env.GC_HEAP_SNAPSHOT_DIR;
  const snapshot = dir ? writeHeapSnapshot(join(dir, `heap-${process.pid}-${++snapshots}.heapsnapshot`)) : undefined;
  process.stderr.write(`GC_HEAP ${JSON.stringify({ heapUsed, heapTotal, rss, external, arrayBuffers, gc: typeof gc === 'function', spaces, snapshot })}\n`);
}
