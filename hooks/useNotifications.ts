'use client';
/**
 * The signed-in user's notifications: the newest page, the unread count, and the actions of the
 * bell. Live over the socket while it is open (`notifications_{me}`); while it is not, the
 * notifications API is polled every `pollMs` (NOTIFICATIONS_POLL_MS, 60 s by default), so
 * nothing is lost when the WebSocket server is down or unreachable.
 *
 * Every socket event carries what it needs to apply without a fetch; the unread count in
 * `notification_read`, `notifications_cleared` and `unread_notifications` is the server's and
 * replaces ours. The state and its ordering rules (an older snapshot never sets the count back,
 * notifications de-duplicated by id) are notifications-state.ts. After a reconnect the channel
 * continues from its position: when the server replays what was missed nothing is fetched; when
 * it cannot (`recovered: false`) it sends `notifications_recovered` (what came after the newest
 * notification held, and the unread count), and the page is refetched as well.
 */
import { useCallback, useEffect, useReducer, useRef } from 'react';
import { channelName, type PushFrame } from '@/websocket-server/src/protocol/index.ts';
import { api } from './api-client.ts';
import {
  initialNotificationsState,
  newestNotificationId,
  notificationsActionFor,
  notificationsReducer,
  type NotificationsState,
} from './notifications-state.ts';
import type { ChannelStatus } from './realtime/client.ts';
import { useRealtimeContext } from './RealtimeProvider.tsx';
import { useChannel } from './useChannel.ts';
import { useWebSocket } from './useWebSocket.ts';

export type { NotificationsState } from './notifications-state.ts';

export interface UseNotifications extends NotificationsState {
  /** 'websocket' while live (socket open, channel not refused), 'polling' while the API is polled instead. */
  mode: 'websocket' | 'polling';
  /** The notifications channel's subscription on the socket. */
  channel: ChannelStatus;
  refresh(): Promise<void>;
  loadMore(): Promise<void>;
  markRead(id: string): Promise<void>;
  markAllRead(): Promise<void>;
  clear(): Promise<void>;
}

export function useNotifications(): UseNotifications {
  const context = useRealtimeContext();
  const { mode } = useWebSocket();
  const [state, dispatch] = useReducer(notificationsReducer, initialNotificationsState);
  const latestState = useRef(state);
  useEffect(() => {
    latestState.current = state;
  });
  const userId = context?.userId ?? null;
  const pollMs = context?.pollMs ?? 60_000;

  // Answers can come back out of order (a poll racing a refetch); only the newest request's
  // first page is applied.
  const requestSeq = useRef(0);
  const refresh = useCallback(async () => {
    const seq = ++requestSeq.current;
    try {
      const page = await api.notifications();
      if (seq === requestSeq.current) dispatch({ type: 'page', page, append: false });
    } catch (error) {
      dispatch({ type: 'error', message: (error as Error).message });
    }
  }, []);

  useEffect(() => {
    if (userId) void refresh();
  }, [userId, refresh]);

  const onPush = (_data: unknown, frame: PushFrame) => {
    const action = notificationsActionFor(frame);
    if (action) dispatch(action);
  };
  const channel = useChannel(
    userId ? channelName.notifications(userId) : null,
    {
      notification: onPush,
      unread_notifications: onPush,
      notifications_recovered: onPush,
      notification_read: onPush,
      notifications_cleared: onPush,
    },
    {
      // With a position to continue from, a failed recovery is answered from the database.
      lastNotificationId: () => newestNotificationId(latestState.current),
      onSubscribed: ({ recovered }) => {
        // Replayed (recovered) or a first subscribe (its snapshot follows): nothing to fetch.
        if (recovered === false) void refresh();
      },
    },
  );

  // HTTP polling whenever the socket is not open (connecting, reconnecting, closed), or it is
  // but the channel is not live on it (refused after the client's retries). A session refresh
  // keeps the socket open and the channel subscribed: nothing changes here.
  const live = mode === 'websocket' && channel.status !== 'error';
  useEffect(() => {
    if (!userId || live) return;
    const timer = setInterval(() => void refresh(), pollMs);
    return () => clearInterval(timer);
  }, [userId, live, pollMs, refresh]);

  const nextCursor = state.nextCursor;
  const loadMore = useCallback(async () => {
    if (!nextCursor) return;
    try {
      dispatch({ type: 'page', page: await api.notifications(nextCursor), append: true });
    } catch (error) {
      dispatch({ type: 'error', message: (error as Error).message });
    }
  }, [nextCursor]);

  // Actions apply the server's answer at once; the matching socket event (also sent to the
  // user's other tabs) then changes nothing.
  const markRead = useCallback(async (id: string) => {
    try {
      const { unreadCount } = await api.markRead(id);
      dispatch({ type: 'read', notificationId: id, unreadCount });
    } catch (error) {
      dispatch({ type: 'error', message: (error as Error).message });
    }
  }, []);

  const markAllRead = useCallback(async () => {
    try {
      const { unreadCount } = await api.markAllRead();
      dispatch({ type: 'read', notificationId: null, unreadCount });
    } catch (error) {
      dispatch({ type: 'error', message: (error as Error).message });
    }
  }, []);

  const clear = useCallback(async () => {
    try {
      const { unreadCount } = await api.clearNotifications();
      dispatch({ type: 'cleared', unreadCount });
    } catch (error) {
      dispatch({ type: 'error', message: (error as Error).message });
    }
  }, []);

  return { ...state, mode: live ? 'websocket' : 'polling', channel, refresh, loadMore, markRead, markAllRead, clear };
}
