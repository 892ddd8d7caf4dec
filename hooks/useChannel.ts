'use client';
/**
 * Subscribes the component to one channel on the tab's socket for as long as it is mounted.
 *
 *   useChannel(channelName.post(id), { post_liked: (data) => setLikes(data.likesCount) });
 *
 * Handlers may change on every render without resubscribing (they are read through a ref).
 * Pushes reach the handlers in the channel's order, each once (hooks/realtime/subscription.ts).
 * `since` is the position the component's state was read at (a page rendered from the
 * database): the first subscribe continues from there, so what was published in between is
 * replayed. After a reconnect the channel continues from its last applied position by itself.
 * `onSubscribed({resubscribed, wasRecovering, recovered})` runs on every confirmation, the first
 * and each one after a reconnect; `recovered === false` means events were lost and the component
 * must reload its state (otherwise nothing needs fetching). `onError` runs when the
 * server refuses the channel (after the client's own retries of `internal_error` and
 * `rate_limited`); `onRevoked` when the server ends the subscription itself because access was
 * lost (subscription cancelled, post locked): nothing more arrives, the status becomes
 * `{status: 'error', code: 'forbidden'}`, and the moment has come to show the locked state.
 * `channel` null: nothing.
 */
import { useEffect, useRef, useSyncExternalStore } from 'react';
import type { ErrorFrame, EventData, EventType, PushFrame, StreamPosition, UnsubscribeReason } from '@/websocket-server/src/protocol/index.ts';
import { useRealtimeContext } from './RealtimeProvider.tsx';
import type { ChannelStatus, SubscribedInfo } from './realtime/client.ts';

export type { SubscribedInfo } from './realtime/client.ts';

export type ChannelHandlers = { [K in EventType]?: (data: EventData<K>, frame: PushFrame<K>) => void };

export interface ChannelOptions {
  /** Where the component's state was read (read when the channel is subscribed, not later). */
  since?: StreamPosition | null | undefined;
  /** notifications_: the newest notification the component holds, for a failed recovery. */
  lastNotificationId?: () => string | undefined;
  onSubscribed?: (info: SubscribedInfo) => void;
  onError?: (error: ErrorFrame) => void;
  onRevoked?: (info: { reason: UnsubscribeReason; message: string }) => void;
}

const PENDING: ChannelStatus = { status: 'pending' };
const noop = () => () => {};

export function useChannel(channel: string | null, handlers: ChannelHandlers, options: ChannelOptions = {}): ChannelStatus {
  const client = useRealtimeContext()?.client ?? null;
  const latest = useRef({ handlers, options });
  useEffect(() => {
    latest.current = { handlers, options };
  });

  useEffect(() => {
    if (!client || !channel) return;
    return client.subscribe(channel, {
      since: latest.current.options.since ?? null,
      lastNotificationId: () => latest.current.options.lastNotificationId?.(),
      onEvent(frame) {
        const handler = latest.current.handlers[frame.type] as ((data: unknown, frame: PushFrame) => void) | undefined;
        handler?.(frame.data, frame);
      },
      onSubscribed(info) {
        latest.current.options.onSubscribed?.(info);
      },
      onError(error) {
        latest.current.options.onError?.(error);
      },
      onRevoked(reason, message) {
        latest.current.options.onRevoked?.({ reason, message });
      },
    });
  }, [client, channel]);

  // Status objects are replaced, never mutated, so their identity is a valid snapshot.
  return useSyncExternalStore(
    client?.subscribeChannelStatus ?? noop,
    () => (client && channel ? client.channelStatus(channel) : PENDING),
    () => PENDING,
  );
}
