/**
 * Where slow deliveries come from: each delivery at or above the slow threshold (its interval
 * from the publisher's stamp to its receipt) is matched against what the server's probe saw in
 * the same window — event-loop stalls, GC pauses — and against the project's heartbeat sweeps,
 * seen by the clients as the instants their sockets received a WebSocket ping.
 */
import type { ProbeWindow } from '../servers.ts';

export interface Interval {
  start: number;
  end: number;
}

/** loopStall: the loop was busy (the process used ≥ half the stall's time in CPU); descheduled:
 * the loop was stalled while the process waited for a CPU (other processes ran). */
export interface Tally {
  heartbeatSweep: number;
  gcPause: number;
  loopStall: number;
  descheduled: number;
  none: number;
}

export interface SlowAnalysis {
  slowCount: number;
  atOrAboveP99: number;
  p99Ms: number;
  overlapping: Tally;
  overlappingAtP99: Tally;
  sweeps: Array<{ start: number; durationMs: number; pings: number }>;
  stalls: Array<{ at: number; ms: number; cpuMs: number }>;
  gcPauses: Array<{ at: number; ms: number; kind: string }>;
  worst: Array<{ sentAt: number; latencyMs: number }>;
  summary: string;
}

/** Pings closer than `gapMs` to the previous one belong to the same sweep. */
export function sweepsOf(pings: number[], gapMs = 1_000): Array<Interval & { pings: number }> {
  const sorted = [...pings].sort((a, b) => a - b);
  const sweeps: Array<Interval & { pings: number }> = [];
  for (const t of sorted) {
    const last = sweeps.at(-1);
    if (last && t - last.end <= gapMs) {
      last.end = t;
      last.pings++;
    } else sweeps.push({ start: t, end: t, pings: 1 });
  }
  return sweeps;
}

const overlaps = (a: Interval, b: Interval) => a.start <= b.end && b.start <= a.end;

export function analyseSlow(slow: Array<[number, number]>, window: ProbeWindow, pings: number[], p99Ms: number): SlowAnalysis {
  const sweeps = sweepsOf(pings);
  const busy = (s: { ms: number; cpuMs: number }) => s.cpuMs >= 0.5 * (s.ms + 5);
  const stalls = window.stalls.filter(busy).map((s) => ({ start: s.at, end: s.at + s.ms }));
  const descheduled = window.stalls.filter((s) => !busy(s)).map((s) => ({ start: s.at, end: s.at + s.ms }));
  const pauses = window.gc.long.map((g) => ({ start: g.at, end: g.at + g.ms }));
  const tally = (items: Array<[number, number]>) => {
    const out: Tally = { heartbeatSweep: 0, gcPause: 0, loopStall: 0, descheduled: 0, none: 0 };
    for (const [sentAt, latency] of items) {
      const span = { start: sentAt, end: sentAt + latency };
      const inSweep = sweeps.some((s) => overlaps(span, s));
      const inGc = pauses.some((p) => overlaps(span, p));
      const inStall = stalls.some((s) => overlaps(span, s));
      const inWait = descheduled.some((s) => overlaps(span, s));
      if (inSweep) out.heartbeatSweep++;
      if (inGc) out.gcPause++;
      if (inStall) out.loopStall++;
      if (inWait) out.descheduled++;
      if (!inSweep && !inGc && !inStall && !inWait) out.none++;
    }
    return out;
  };
  const atP99 = slow.filter(([, latency]) => latency >= p99Ms);
  const overlapping = tally(slow);
  const overlappingAtP99 = tally(atP99);
  const worst = [...slow].sort((a, b) => b[1] - a[1]).slice(0, 50).map(([sentAt, latencyMs]) => ({ sentAt, latencyMs: Math.round(latencyMs * 100) / 100 }));
  const stallMax = Math.max(0, ...window.stalls.map((s) => s.ms));
  const summary =
    `${slow.length} deliveries ≥ slow threshold, ${atP99.length} ≥ p99 (${p99Ms} ms); of those ≥ p99: ` +
    `${overlappingAtP99.heartbeatSweep} during a heartbeat sweep, ${overlappingAtP99.gcPause} during a GC pause ≥ 5 ms, ` +
    `${overlappingAtP99.loopStall} during a busy event-loop stall ≥ 15 ms, ${overlappingAtP99.descheduled} while the server waited for a CPU, ${overlappingAtP99.none} during none. ` +
    `Server: ${stalls.length} busy stalls ≥ 15 ms and ${descheduled.length} while waiting for a CPU (worst ${stallMax} ms), ${window.gc.long.length} GC pauses ≥ 5 ms (worst ${window.gc.maxMs} ms); ` +
    `${sweeps.length} heartbeat sweeps seen` +
    (sweeps.length ? ` (pings spread over ${sweeps.map((s) => Math.round(s.end - s.start)).join(', ')} ms)` : '');
  return {
    slowCount: slow.length,
    atOrAboveP99: atP99.length,
    p99Ms,
    overlapping,
    overlappingAtP99,
    sweeps: sweeps.map((s) => ({ start: s.start, durationMs: Math.round(s.end - s.start), pings: s.pings })),
    stalls: window.stalls,
    gcPauses: window.gc.long,
    worst,
    summary,
  };
}
