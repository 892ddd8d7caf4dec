/**
 * In-process broker: the single-machine default when REDIS_URL is not set. Delivery is
 * asynchronous (a microtask), as it is through Redis, so callers never depend on a publish
 * having reached subscribers before `publish` returns.
 */
import type { Broker, BrokerHealth, BrokerMessageHandler } from './broker.ts';

export class MemoryBroker implements Broker {
  readonly kind = 'memory' as const;
  readonly #channels = new Set<string>();
  #handler: BrokerMessageHandler = () => {};
  #closed = false;

  onMessage(handler: BrokerMessageHandler): void {
    this.#handler = handler;
  }

  async subscribe(channel: string): Promise<void> {
    this.#channels.add(channel);
  }

  async unsubscribe(channel: string): Promise<void> {
    this.#channels.delete(channel);
  }

  async publish(channel: string, payload: string): Promise<void> {
    if (this.#closed) throw new Error('broker is closed');
    if (!this.#channels.has(channel)) return;
    queueMicrotask(() => {
      if (this.#channels.has(channel)) this.#handler(channel, payload);
    });
  }

  health(): BrokerHealth {
    return { kind: 'memory', state: this.#closed ? 'closed' : 'ready' };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#channels.clear();
  }
}
