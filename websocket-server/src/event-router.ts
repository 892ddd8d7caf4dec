/**
 * Turns a broker message into one push frame and hands the same bytes to every local subscriber
 * of its channel. Validation and serialization happen once per event per node; nothing here
 * touches the database.
 */
import { randomUUID } from 'node:crypto';
import type { Hub } from './hub.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import { publishedEventSchema, type PublishedEvent } from './protocol/index.ts';

export class EventRouter {
  readonly #hub: Hub;
  readonly #metrics: Metrics;
  readonly #logger: Logger;

  constructor(hub: Hub, metrics: Metrics, logger: Logger) {
    this.#hub = hub;
    this.#metrics = metrics;
    this.#logger = logger.child({ component: 'event-router' });
  }

  /** Broker callback: `payload` is the JSON a publisher sent for `channel`. */
  route(channel: string, payload: string): void {
    if (!this.#hub.has(channel)) {
      this.#metrics.eventsReceived.inc({ outcome: 'no_subscribers' });
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(payload);
    } catch {
      this.#reject(channel, 'payload is not JSON');
      return;
    }
    const parsed = publishedEventSchema.safeParse(value);
    if (!parsed.success) {
      this.#reject(channel, parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
      return;
    }
    const frame = Buffer.from(JSON.stringify(toPushFrame(channel, parsed.data)));
    const delivered = this.#hub.deliver(channel, frame);
    this.#metrics.eventsReceived.inc({ outcome: 'delivered' });
    this.#logger.debug('event delivered', { channel, type: parsed.data.type, subscribers: delivered });
  }

  #reject(channel: string, reason: string): void {
    this.#metrics.eventsReceived.inc({ outcome: 'invalid' });
    this.#logger.warn('dropped malformed event', { channel, reason: reason.slice(0, 500) });
  }
}

/** Fills `id` and `ts` when the publisher left them out. */
export function toPushFrame(channel: string, event: PublishedEvent) {
  return { type: event.type, channel, data: event.data, id: event.id ?? randomUUID(), ts: event.ts ?? Date.now() };
}
