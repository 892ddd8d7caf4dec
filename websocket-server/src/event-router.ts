/**
 * Turns a broker message into one push frame and hands the same bytes to every local subscriber
 * of its channel. Validation and serialization happen once per event per node; nothing here
 * touches the database. Events with a history position go through the channel's continuity
 * check first (history/continuity.ts), so a node that missed some delivers them before newer ones.
 */
import type { Continuity } from './history/continuity.ts';
import { parsePush } from './history/push-frames.ts';
import type { Hub } from './hub.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';

export class EventRouter {
  readonly #hub: Hub;
  readonly #continuity: Continuity;
  readonly #metrics: Metrics;
  readonly #logger: Logger;

  constructor(hub: Hub, continuity: Continuity, metrics: Metrics, logger: Logger) {
    this.#hub = hub;
    this.#continuity = continuity;
    this.#metrics = metrics;
    this.#logger = logger.child({ component: 'event-router' });
  }

  /** Broker callback: `payload` is the JSON a publisher sent for `channel`. */
  route(channel: string, payload: string): void {
    if (!this.#hub.has(channel)) {
      this.#metrics.eventsReceived.inc({ outcome: 'no_subscribers' });
      return;
    }
    const parsed = parsePush(channel, payload);
    if (!parsed.ok) {
      this.#metrics.eventsReceived.inc({ outcome: 'invalid' });
      this.#logger.warn('dropped malformed event', { channel, reason: parsed.reason.slice(0, 500) });
      return;
    }
    this.#metrics.eventsReceived.inc({ outcome: 'delivered' });
    this.#continuity.accept(channel, parsed.push);
  }
}
