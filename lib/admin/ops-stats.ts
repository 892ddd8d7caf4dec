/**
 * What the admin page shows, in one answer (GET /api/admin/stats): every WebSocket node's
 * snapshot (lib/admin/ws-stats.ts), their totals, and the outbox backlog from PostgreSQL.
 *
 * Events per second come from the nodes: each computes its own rates over a rolling window
 * (websocket-server/src/ops/node-stats.ts), so the page shows the same figure however often and
 * from however many tabs it polls. `deliveredPerSecond` sums push frames written to sockets on
 * all nodes; `receivedPerSecond` sums events taken from the broker, which counts an event once
 * per node that holds its channel.
 */
import { log } from '@/lib/log.ts';
import { outboxBacklog, type OutboxBacklog } from '@/lib/realtime/outbox-backlog.ts';
import { wsStats, type WsNodeStats, type WsStats } from './ws-stats.ts';

export interface OpsTotals {
  nodes: number;
  connections: number;
  /** Summed per node: a user with sockets on two nodes counts twice. */
  users: number;
  channels: number;
  subscriptions: number;
  deliveredPerSecond: number;
  receivedPerSecond: number;
  eventsDeliveredTotal: number;
  publishFailuresTotal: number;
  invalidEventsTotal: number;
  slowConsumerClosesTotal: number;
}

/** Where the node list came from (its nodes are given once, in `nodes`). */
export type WsStatsSummary = Exclude<WsStats, { status: 'ok' }> | Omit<Extract<WsStats, { status: 'ok' }>, 'nodes'>;

export interface OpsStats {
  at: string;
  websocket: WsStatsSummary;
  nodes: WsNodeStats[];
  totals: OpsTotals;
  /** null when the database did not answer. */
  outbox: (OutboxBacklog & { oldestPendingAgeSeconds: number | null }) | null;
}

const sum = (nodes: readonly WsNodeStats[], pick: (node: WsNodeStats) => number) =>
  Math.round(nodes.reduce((total, node) => total + pick(node), 0) * 100) / 100;

export function totalsOf(nodes: readonly WsNodeStats[]): OpsTotals {
  return {
    nodes: nodes.length,
    connections: sum(nodes, (n) => n.connections),
    users: sum(nodes, (n) => n.users),
    channels: sum(nodes, (n) => n.channels),
    subscriptions: sum(nodes, (n) => n.subscriptions),
    deliveredPerSecond: sum(nodes, (n) => n.deliveredPerSecond),
    receivedPerSecond: sum(nodes, (n) => n.receivedPerSecond),
    eventsDeliveredTotal: sum(nodes, (n) => n.eventsDeliveredTotal),
    publishFailuresTotal: sum(nodes, (n) => n.publishFailuresTotal),
    invalidEventsTotal: sum(nodes, (n) => n.invalidEventsTotal),
    slowConsumerClosesTotal: sum(nodes, (n) => n.slowConsumerClosesTotal),
  };
}

export async function opsStats(): Promise<OpsStats> {
  const [websocket, outbox] = await Promise.all([
    wsStats(),
    outboxBacklog().catch((error: unknown) => {
      log.warn('reading the outbox backlog failed', { error: (error as Error).message });
      return null;
    }),
  ]);
  const now = Date.now();
  let nodes: WsNodeStats[] = [];
  let summary: WsStatsSummary = websocket;
  if (websocket.status === 'ok') {
    const { nodes: listed, ...rest } = websocket;
    nodes = listed;
    summary = rest;
  }
  return {
    at: new Date(now).toISOString(),
    websocket: summary,
    nodes,
    totals: totalsOf(nodes),
    outbox: outbox && {
      ...outbox,
      oldestPendingAgeSeconds: outbox.oldestPendingAt ? Math.max(0, Math.round((now - Date.parse(outbox.oldestPendingAt)) / 1000)) : null,
    },
  };
}
