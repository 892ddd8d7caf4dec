// Preloaded into every server process of bench/compare (project, Socket.IO, raw ws) with
// `--expose-gc --import <this file>`, so the three are observed the same way without a line of
// their code changing. It answers IPC messages from the harness:
//
//   {probe: 'gc', id}      → full garbage collections, then {probe: 'gc', id, heapUsed, rss, …}
//   {probe: 'window', id}  → what happened since the previous 'window': event-loop delay
//                            (p50/p99/max), GC pauses (count, total, max, the long ones with their
//                            wall-clock start), and event-loop stalls ≥ STALL_MS with their start
//                            and the CPU the process used meanwhile
//
// Stalls are seen by a 5 ms timer that measures its own lateness (a few hundred wake-ups a
// second, identical for the three servers). Times are wall-clock ms (performance.timeOrigin +
// performance.now()), the clock the clients stamp latencies with. Plain JavaScript: preloads run
// before tsx is registered, and also in tsx's module-loader thread, where this does nothing.
import { monitorEventLoopDelay, performance, PerformanceObserver } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';

const STALL_MS = 15;
const TICK_MS = 5;
const KEEP = 2000;

if (isMainThread && typeof process.send === 'function') {
  const now = () => performance.timeOrigin + performance.now();
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();

  let gc = { count: 0, totalMs: 0, maxMs: 0, long: [] };
  // perf_hooks' constants.NODE_PERFORMANCE_GC_*: MINOR 1, MAJOR 4, INCREMENTAL 8, WEAKCB 16.
  const gcKinds = { 1: 'minor (scavenge)', 4: 'major (mark-compact)', 8: 'incremental marking', 16: 'weak callbacks' };
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gc.count++;
      gc.totalMs += entry.duration;
      if (entry.duration > gc.maxMs) gc.maxMs = entry.duration;
      if (entry.duration >= 5 && gc.long.length < KEEP) {
        const kind = gcKinds[entry.detail?.kind] ?? String(entry.detail?.kind);
        gc.long.push({ at: performance.timeOrigin + entry.startTime, ms: round(entry.duration), kind });
      }
    }
  }).observe({ entryTypes: ['gc'] });

  // cpuMs: the process's CPU time over the stall (tick + lateness). Near the stall's length, the
  // loop was busy; far below it, the process was waiting for a CPU (other processes ran).
  let stalls = [];
  let expected = now() + TICK_MS;
  let lastCpu = cpuNow();
  setInterval(() => {
    const t = now();
    const late = t - expected;
    const cpu = cpuNow();
    if (late >= STALL_MS && stalls.length < KEEP) stalls.push({ at: round(expected), ms: round(late), cpuMs: round((cpu - lastCpu) / 1000) });
    lastCpu = cpu;
    expected = t + TICK_MS;
  }, TICK_MS).unref();

  process.on('message', (message) => {
    if (typeof message !== 'object' || message === null || typeof message.probe !== 'string') return;
    if (message.probe === 'gc') {
      const run = globalThis.gc;
      void (async () => {
        // Several collections a few turns apart: a closed socket's native handle is released by a
        // weak callback after one collection, and what it held only by the next.
        for (let i = 0; i < 3 && run; i++) {
          run();
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        run?.();
        const { heapUsed, heapTotal, rss, external, arrayBuffers } = process.memoryUsage();
        process.send({ probe: 'gc', id: message.id, gc: typeof run === 'function', heapUsed, heapTotal, rss, external, arrayBuffers });
      })();
    } else if (message.probe === 'window') {
      const ms = (ns) => round(ns / 1e6);
      const window = {
        loopDelay: { p50: ms(delay.percentile(50)), p99: ms(delay.percentile(99)), max: ms(delay.max) },
        gc: { count: gc.count, totalMs: round(gc.totalMs), maxMs: round(gc.maxMs), long: gc.long },
        stalls,
        // The same instant on both clocks, to place a --cpu-prof profile (monotonic µs) on the
        // wall clock that stalls, GC pauses and client latencies are stamped with.
        clock: { wallMs: now(), monotonicUs: Number(process.hrtime.bigint() / 1000n) },
      };
      delay.reset();
      gc = { count: 0, totalMs: 0, maxMs: 0, long: [] };
      stalls = [];
      process.send({ probe: 'window', id: message.id, ...window });
    }
  });
}

function cpuNow() {
  const { user, system } = process.cpuUsage();
  return user + system;
}

function round(value) {
  return Math.round(value * 100) / 100;
}
