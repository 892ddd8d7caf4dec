/**
 * The real server entry (websocket-server/src/main.ts), plus a SIGUSR2 handler that runs a full
 * garbage collection and prints `MEM {…}` to stderr: only for bench/memory.ts, started with
 * --expose-gc, so that memory is read without the garbage a handshake leaves behind.
 */
process.on('SIGUSR2', () => {
  (globalThis as { gc?: () => void }).gc?.();
  const { rss, heapUsed, external } = process.memoryUsage();
  process.stderr.write(`MEM ${JSON.stringify({ rss, heapUsed, external })}\n`);
});
await import('../../websocket-server/src/main.ts');

export {};
