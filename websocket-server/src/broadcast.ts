/**
 * Operator broadcasts (maintenance notices): `broadcast` events on the reserved channel
 * `broadcast`, delivered to every authenticated socket on this node without any subscribe state.
 *
 * Every node subscribes the broker channel at start, as it does `$control` (Redis
 * `ws:broadcast`, a Cluster's shard channel `ws:{broadcast}`), so one PUBLISH reaches every
 * socket of every node. The frame is validated and framed once per node and the same bytes are
 * queued on each socket (Connection.sendWire), so the slow-consumer bound applies as for any push.
 *
 * Not kept in the channel history (it has none: no offset, no replay). Instead the node keeps
 * the latest broadcast for `retainMs` and sends it to each socket that connects meanwhile, so a
 * user who opens the site during a maintenance window still sees the notice (ADR 0010). The copy
 * has the same `id` as the live frame: a client recognises a notice it already showed or
 * dismissed. A newer broadcast replaces the kept one.
 */
import { parsePush } from './history/push-frames.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import { BROADCAST_CHANNEL } from './protocol/index.ts';

/** What a broadcast is written to: an open Connection. */
export interface BroadcastTarget {
  readonly closed: boolean;
  /** Queues a complete WebSocket frame (bounded by the connection's maxBufferedBytes). */
  sendWire(frame: Buffer): void;
}

export interface BroadcasterOptions {
  /** How long the latest broadcast is sent to sockets that connect after it (ms); 0 keeps none. */
  retainMs: number;
  now?: () => number;
}

/** Ten minutes: long enough to cover a page load during a short maintenance window. */
export const DEFAULT_BROADCAST_RETAIN_MS = 10 * 60_000;

export class Broadcaster {
  readonly #targets: () => Iterable<BroadcastTarget>;
  readonly #metrics: Metrics;
  readonly #logger: Logger;
  readonly #retainMs: number;
  readonly #now: () => number;
  /** The latest broadcast's frame and until when it is sent at connect. One frame, ≤ ~1 KB. */
  #retained: { wire: Buffer; until: number } | null = null;

  constructor(targets: () => Iterable<BroadcastTarget>, metrics: Metrics, logger: Logger, options: BroadcasterOptions) {
    this.#targets = targets;
    this.#metrics = metrics;
    this.#logger = logger.child({ component: 'broadcast' });
    this.#retainMs = options.retainMs;
    this.#now = options.now ?? Date.now;
  }

  /** Broker callback for the broadcast channel: `payload` is what the publisher sent. */
  handle(payload: string): void {
    const parsed = parsePush(BROADCAST_CHANNEL, payload);
    if (!parsed.ok) {
      this.#metrics.broadcasts.inc({ outcome: 'invalid' });
      this.#logger.warn('dropped malformed broadcast', { reason: parsed.reason.slice(0, 500) });
      return;
    }
    const { wire, event } = parsed.push;
    this.#retained = this.#retainMs > 0 ? { wire, until: this.#now() + this.#retainMs } : null;
    let sockets = 0;
    for (const target of this.#targets()) {
      if (target.closed) continue;
      target.sendWire(wire);
      sockets++;
    }
    this.#metrics.broadcasts.inc({ outcome: 'delivered' });
    this.#metrics.broadcastDeliveries.inc({ when: 'live' }, sockets);
    // The message itself is operator text, not a secret; its level and size are enough here.
    this.#logger.info('broadcast delivered', { id: event.id, level: (event.data as { level?: string }).level, sockets });
  }

  /** A socket just sent its `connected` frame: the notice still in force, if any, follows it. */
  welcome(target: BroadcastTarget): void {
    const retained = this.#retained;
    if (!retained) return;
    if (retained.until <= this.#now()) {
      this.#retained = null;
      return;
    }
    target.sendWire(retained.wire);
    this.#metrics.broadcastDeliveries.inc({ when: 'at_connect' });
  }
}
