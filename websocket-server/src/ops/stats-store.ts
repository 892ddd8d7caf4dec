/**
 * Where every node keeps its latest stats snapshot (ops/node-stats.ts) for the operator's view
 * (`GET /stats`, the app's admin page): the broker's shared store, so any node can list all of
 * them. Each write counts for `ttlMs`; a node that stops writing (killed, hung, cut off from
 * Redis) drops out of the list `ttlMs` after its last write, without anybody removing it, as
 * presence entries do (presence/presence.ts).
 *
 * Two implementations: Redis (ops/stats-store-redis.ts, one Redis or a Cluster, shared by every
 * node) and this in-process one beside the in-memory broker (one node: it lists only itself).
 */
import { z } from 'zod';

export const nodeStatsSnapshotSchema = z.object({
  nodeId: z.string(),
  pid: z.number().int(),
  host: z.string(),
  /** ISO time the process started. */
  startedAt: z.string(),
  /** ISO time of this snapshot, on the node's clock. */
  writtenAt: z.string(),
  broker: z.enum(['redis', 'memory']),
  /** Open authenticated sockets. */
  connections: z.number().int().nonnegative(),
  /** Distinct users among them. */
  users: z.number().int().nonnegative(),
  /** Channels with at least one local subscriber (each one a broker subscription). */
  channels: z.number().int().nonnegative(),
  /** Connection × channel memberships. */
  subscriptions: z.number().int().nonnegative(),
  /** Frames written to sockets since start, pushes and replies (ws_messages_sent_total). */
  eventsDeliveredTotal: z.number().nonnegative(),
  /** Events that reached this node from the broker since start (ws_broker_events_total). */
  eventsReceivedTotal: z.number().nonnegative(),
  /** Rates of the two totals over the node's rolling window (`rateWindowSeconds`). */
  deliveredPerSecond: z.number().nonnegative(),
  receivedPerSecond: z.number().nonnegative(),
  rateWindowSeconds: z.number().nonnegative(),
  /** POST /publish answers of 5xx: the broker could not take the event (or publishing is off). */
  publishFailuresTotal: z.number().nonnegative(),
  /** Broker events dropped as malformed or ahead of history. */
  invalidEventsTotal: z.number().nonnegative(),
  /** Sockets closed because MAX_BUFFERED_BYTES waited for them. */
  slowConsumerClosesTotal: z.number().nonnegative(),
  memory: z.object({ rssBytes: z.number().nonnegative(), heapUsedBytes: z.number().nonnegative() }),
  /** Event-loop delay since the previous snapshot (ms). */
  eventLoopLagMs: z.object({ mean: z.number().nonnegative(), p99: z.number().nonnegative(), max: z.number().nonnegative() }),
});

export type NodeStatsSnapshot = z.infer<typeof nodeStatsSnapshotSchema>;

/** A snapshot as listed: how long ago it was written (ms, on the store's clock). */
export type ListedNodeStats = NodeStatsSnapshot & { ageMs: number };

export interface NodeStatsStore {
  readonly kind: 'redis' | 'memory';
  /** Stores `snapshot` under its node id, counting for `ttlMs` from now. */
  write(snapshot: NodeStatsSnapshot, ttlMs: number): Promise<void>;
  /** Every snapshot still counting, ordered by node id. */
  list(): Promise<ListedNodeStats[]>;
  /** Removes a node at once (its graceful shutdown). */
  remove(nodeId: string): Promise<void>;
  /** Idempotent. */
  close(): Promise<void>;
}

/** In-process: this node alone, on this process's clock. */
export class MemoryNodeStatsStore implements NodeStatsStore {
  readonly kind = 'memory' as const;
  readonly #entries = new Map<string, { snapshot: NodeStatsSnapshot; writtenAt: number; expiresAt: number }>();
  readonly #now: () => number;

  constructor({ now = Date.now }: { now?: () => number } = {}) {
    this.#now = now;
  }

  async write(snapshot: NodeStatsSnapshot, ttlMs: number): Promise<void> {
    const now = this.#now();
    this.#entries.set(snapshot.nodeId, { snapshot, writtenAt: now, expiresAt: now + ttlMs });
  }

  async list(): Promise<ListedNodeStats[]> {
    const now = this.#now();
    const listed: ListedNodeStats[] = [];
    for (const [nodeId, entry] of this.#entries) {
      if (entry.expiresAt <= now) this.#entries.delete(nodeId);
      else listed.push({ ...entry.snapshot, ageMs: now - entry.writtenAt });
    }
    return listed.sort((a, b) => a.nodeId.localeCompare(b.nodeId));
  }

  async remove(nodeId: string): Promise<void> {
    this.#entries.delete(nodeId);
  }

  async close(): Promise<void> {
    this.#entries.clear();
  }
}
