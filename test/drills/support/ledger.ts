/**
 * Counting what was published against what each client received.
 *
 * An event is *delivered* to a client when the client applied it (after dropping repeated ids).
 * It is *covered by a reload* when the client reloaded the channel (`recovered: false`) after it:
 * a reload whose position is in the event's epoch covers the offsets up to that position; a
 * reload in another epoch covers what was acknowledged before the reload arrived (that history
 * is gone, and the client re-read its state after). Anything else is *lost*: published with an
 * offset, never received, and no reload of its channel after it.
 *
 * *Duplicates after dedup*: events applied more than once though the client drops repeated ids
 * (the same sequence number under two ids). *Out of order*: applied sequence numbers that go
 * backwards.
 */
import type { DrillClient, Reload, Reconnect } from './drill-client.ts';
import type { PublishedEvent } from './publisher.ts';

export interface ClientAccount {
  client: string;
  published: number;
  delivered: number;
  coveredByReload: number;
  lost: PublishedEvent[];
  duplicatesAfterDedup: number;
  rawDuplicates: number;
  outOfOrder: number;
  reloads: Reload[];
  resubscribeNotices: number;
  violations: string[];
}

export function covers(reload: Reload, event: PublishedEvent): boolean {
  if (!event.position) return false;
  return event.position.epoch === reload.position.epoch ? event.position.offset <= reload.position.offset : event.ackedAt < reload.at;
}

export function account(client: DrillClient, channel: string, published: readonly PublishedEvent[]): ClientAccount {
  const state = client.channel(channel);
  const ids = state.ids;
  const lost: PublishedEvent[] = [];
  let delivered = 0;
  let coveredByReload = 0;
  for (const event of published) {
    if (event.channel !== channel) continue;
    if (ids.has(event.id)) delivered++;
    else if (state.reloads.some((reload) => covers(reload, event))) coveredByReload++;
    else lost.push(event);
  }
  const seqCounts = new Map<number, number>();
  let outOfOrder = 0;
  let last = 0;
  for (const applied of state.applied) {
    if (applied.seq === undefined) continue;
    seqCounts.set(applied.seq, (seqCounts.get(applied.seq) ?? 0) + 1);
    if (applied.seq < last) outOfOrder++;
    last = applied.seq;
  }
  const duplicatesAfterDedup = [...seqCounts.values()].reduce((sum, n) => sum + (n - 1), 0);
  return {
    client: client.name,
    published: published.filter((e) => e.channel === channel).length,
    delivered,
    coveredByReload,
    lost,
    duplicatesAfterDedup,
    rawDuplicates: state.rawDuplicates,
    outOfOrder,
    reloads: state.reloads,
    resubscribeNotices: state.resubscribeNotices,
    violations: state.violations,
  };
}

/** Every event accounted for: all delivered or covered, none lost. */
export function settled(client: DrillClient, channel: string, published: readonly PublishedEvent[]): boolean {
  return account(client, channel, published).lost.length === 0;
}

export interface Totals {
  clients: number;
  published: number;
  deliveries: number;
  expected: number;
  coveredByReload: number;
  lost: number;
  duplicatesAfterDedup: number;
  rawDuplicates: number;
  outOfOrder: number;
  reloads: number;
  resubscribeNotices: number;
  violations: number;
}

export function totals(accounts: readonly ClientAccount[], published: number): Totals {
  const sum = (f: (a: ClientAccount) => number) => accounts.reduce((s, a) => s + f(a), 0);
  return {
    clients: accounts.length,
    published,
    expected: published * accounts.length,
    deliveries: sum((a) => a.delivered),
    coveredByReload: sum((a) => a.coveredByReload),
    lost: sum((a) => a.lost.length),
    duplicatesAfterDedup: sum((a) => a.duplicatesAfterDedup),
    rawDuplicates: sum((a) => a.rawDuplicates),
    outOfOrder: sum((a) => a.outOfOrder),
    reloads: sum((a) => a.reloads.length),
    resubscribeNotices: sum((a) => a.resubscribeNotices),
    violations: sum((a) => a.violations.length),
  };
}

/** Recovery latency per reconnect: from the new socket's `connected` to its last recovered event. */
export function recoveryLatencies(clients: readonly DrillClient[]): number[] {
  return clients
    .flatMap((c) => c.reconnects)
    .filter((r): r is Reconnect & { recoveredAt: number } => r.recoveredAt !== undefined)
    .map((r) => r.recoveredAt - r.connectedAt)
    .sort((a, b) => a - b);
}

export function summarize(values: readonly number[], unit = 'ms'): string {
  if (values.length === 0) return 'n/a';
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  const u = unit ? ` ${unit}` : '';
  return `min ${sorted[0]}${u}, p50 ${at(0.5)}${u}, p95 ${at(0.95)}${u}, max ${sorted.at(-1)}${u} (n=${sorted.length})`;
}

/** One indented block for the drill's output. */
export function report(title: string, lines: Record<string, unknown>): void {
  const width = Math.max(...Object.keys(lines).map((k) => k.length));
  const body = Object.entries(lines)
    .map(([key, value]) => `      ${key.padEnd(width)}  ${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join('\n');
  process.stdout.write(`\n    [drill] ${title}\n${body}\n`);
}

export function describeLost(accounts: readonly ClientAccount[], limit = 5): string {
  return accounts
    .filter((a) => a.lost.length > 0)
    .slice(0, limit)
    .map((a) => `${a.client}: ${a.lost.length} lost (${a.lost.slice(0, 5).map((e) => `#${e.seq}@${e.position?.epoch}:${e.position?.offset}/${e.phase}`).join(', ')}); reloads ${a.reloads.length}; violations ${a.violations.slice(0, 2).join(' | ')}`)
    .join('\n');
}
