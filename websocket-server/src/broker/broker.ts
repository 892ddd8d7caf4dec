/**
 * Moves published events between processes. The hub subscribes a channel here when its first
 * local subscriber arrives and unsubscribes when the last one leaves, so each node receives only
 * what its clients hold (centrifuge's hub/broker split). Payloads are opaque strings here; the
 * server validates them once per node, not per delivery.
 */
import type { StreamPosition } from '../protocol/index.ts';
import type { HistorySlice } from './history-script.ts';

export type { HistorySlice };

export type BrokerMessageHandler = (channel: string, payload: string) => void;

export type BrokerState = 'connecting' | 'ready' | 'down' | 'closed';

/**
 * `transient`: deliver to the nodes subscribed now and keep nothing: no offset, no history, so a
 * subscriber that reconnects never gets it replayed (typing indicators). Resolves to null.
 */
export interface PublishOptions {
  transient?: boolean;
}

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
  /**
   * Delivers to every node subscribed to `channel`, this one included, and keeps the event in the
   * channel's history with the next offset; resolves to its position (null for the control
   * channel, which has no history). `payload` is a JSON object's text; what subscribers receive
   * carries `offset` and `epoch` besides. Rejects when the broker cannot take it now (Redis down).
   * With `{transient: true}` the event is delivered as it is and kept nowhere (see PublishOptions).
   */
  publish(channel: string, payload: string, options?: PublishOptions): Promise<StreamPosition | null>;
  /** The channel's position, and up to `limit` events after offset `since` when it is not null. */
  history(channel: string, since: number | null, limit: number): Promise<HistorySlice>;
  /** Called after the broker lost and regained its subscriptions (Redis reconnected): what was
   * published meanwhile has to be recovered from history. */
  onResubscribed(handler: () => void): void;
  health(): BrokerHealth;
  /** Idempotent. */
  close(): Promise<void>;
}
