/**
 * Moves published events between processes. The hub subscribes a channel here when its first
 * local subscriber arrives and unsubscribes when the last one leaves, so each node receives only
 * what its clients hold (centrifuge's hub/broker split). Payloads are opaque strings here; the
 * server validates them once per node, not per delivery.
 */
export type BrokerMessageHandler = (channel: string, payload: string) => void;

export type BrokerState = 'connecting' | 'ready' | 'down' | 'closed';

export interface BrokerHealth {
  kind: 'redis' | 'memory';
  state: BrokerState;
}

export interface Broker {
  readonly kind: 'redis' | 'memory';
  /** Called for every message on a subscribed channel. One handler; set before subscribing. */
  onMessage(handler: BrokerMessageHandler): void;
  /** Resolves once the channel is subscribed. Idempotent. */
  subscribe(channel: string): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
  /** Delivers to every node subscribed to `channel`, this one included. Rejects when the broker
   * cannot take the message now (Redis down). */
  publish(channel: string, payload: string): Promise<void>;
  health(): BrokerHealth;
  /** Idempotent. */
  close(): Promise<void>;
}
