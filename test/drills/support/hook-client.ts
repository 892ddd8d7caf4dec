/**
 * The browser hook's RealtimeClient (hooks/realtime/client.ts) on `ws` sockets, with its own
 * defaults (full-jitter backoff from 500 ms, since on every resubscribe, dedup), and a listener
 * that writes down what the application would see: every event handed to it, and every
 * confirmation (`recovered`). For drills that check the real client, not only the reference one.
 */
import WebSocket from 'ws';
import { RealtimeClient, type SubscribedInfo, type WebSocketLike } from '../../../hooks/realtime/client.ts';
import type { PushFrame } from '../../../websocket-server/src/protocol/index.ts';
import type { PublishedEvent } from './publisher.ts';

export class HookClient {
  readonly name: string;
  readonly client: RealtimeClient;
  /** Events the listener got, in order: id, sequence number (post_liked likesCount), when. */
  readonly events: Array<{ id: string; seq?: number; at: number }> = [];
  readonly confirmations: Array<SubscribedInfo & { at: number }> = [];
  /** When the state became 'open' after having been something else, each time. */
  readonly opens: number[] = [];
  readonly #unsubscribe: () => void;

  constructor(options: { url: string; token: string; channel: string; name: string }) {
    this.name = options.name;
    this.client = new RealtimeClient({
      endpoint: async () => ({ url: options.url, token: options.token, expiresAt: null }),
      createSocket: (url, protocols) => new WebSocket(url, protocols) as unknown as WebSocketLike,
      location: { protocol: 'http:', host: '127.0.0.1' },
    });
    let last = this.client.getSnapshot().state;
    this.client.subscribeState(() => {
      const state = this.client.getSnapshot().state;
      if (state === 'open' && last !== 'open') this.opens.push(Date.now());
      last = state;
    });
    this.#unsubscribe = this.client.subscribe(options.channel, {
      onEvent: (frame: PushFrame) => {
        const data = frame.data as { likesCount?: unknown };
        this.events.push({ id: frame.id, at: Date.now(), ...(frame.type === 'post_liked' && typeof data.likesCount === 'number' ? { seq: data.likesCount } : {}) });
      },
      onSubscribed: (info) => this.confirmations.push({ ...info, at: Date.now() }),
    });
  }

  start(): void {
    this.client.start();
  }

  get subscribed(): boolean {
    return this.confirmations.length > 0 && this.client.getSnapshot().state === 'open';
  }

  stop(): void {
    this.#unsubscribe();
    this.client.stop();
  }

  /** Ids the application received (already deduplicated by the client). */
  ids(): Set<string> {
    return new Set(this.events.map((e) => e.id));
  }

  /** Per reconnect: from 'open' to the last event handed over that was acknowledged before it
   * (what the reconnect recovered); 0 when it had nothing to recover. */
  recoveryLatencies(published: readonly PublishedEvent[]): number[] {
    const ackedAt = new Map(published.map((e) => [e.id, e.ackedAt]));
    return this.opens.slice(1).map((openedAt, i) => {
      const until = this.opens[i + 2] ?? Infinity;
      const recovered = this.events.filter((e) => e.at >= openedAt && e.at < until && (ackedAt.get(e.id) ?? Infinity) < openedAt);
      return recovered.length === 0 ? 0 : Math.max(...recovered.map((e) => e.at)) - openedAt;
    });
  }
}
