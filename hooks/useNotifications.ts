'use client';
/**
 * The signed-in user's notifications: the newest page, the unread count, and the actions of the
 * bell. Live over the socket while it is open (`notifications_{me}`); while it is not, the
 * notifications API is polled every `pollMs` (NOTIFICATIONS_POLL_MS, 60 s by default), so
 * nothing is lost when the WebSocket server is down or unreachable.
 *
 * Every socket event carries what it needs to apply without a fetch; the unread count in
 * `notification_read`, `notifications_cleared` and `unread_notifications` is the server's and
 * replaces ours. After a reconnect the page is refetched once to catch up.
 */
import { useCallback, useEffect, useReducer, useRef } from 'react';
import { channelName, type NotificationPayload } from '@/websocket-server/src/protocol/index.ts';
import { api, type NotificationPage } from './api-client.ts';
import type { ChannelStatus } from './realtime/client.ts';
import { useRealtimeContext } from './RealtimeProvider.tsx';
import { useChannel } from './useChannel.ts';
import { useWebSocket } from './useWebSocket.ts';

export interface NotificationsState {
  items: NotificationPayload[];
  unreadCount: number;
  nextCursor: string | null;
  loaded: boolean;
  error: string | null;
}

type Action =
  | { type: 'page'; page: NotificationPage; append: boolean }
  | { type: 'pushed'; notification: NotificationPayload }
  | { type: 'unread_snapshot'; notifications: NotificationPayload[]; count: number }
  | { type: 'read'; notificationId: string | null; unreadCount: number }
  | { type: 'cleared'; unreadCount: number }
  | { type: 'error'; message: string };

const initialState: NotificationsState = { items: [], unreadCount: 0, nextCursor: null, loaded: false, error: null };

const newestFirst = (a: NotificationPayload, b: NotificationPayload) =>
  b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id);

function merge(items: NotificationPayload[], incoming: NotificationPayload[]): NotificationPayload[] {
  const byId = new Map(items.map((n) => [n.id, n]));
  for (const n of incoming) byId.set(n.id, n);
  return [...byId.values()].sort(newestFirst);
}

function reducer(state: NotificationsState, action: Action): NotificationsState {
  switch (action.type) {
    case 'page': {
      const items = action.append ? merge(state.items, action.page.notifications) : action.page.notifications;
      return { items, unreadCount: action.page.unreadCount, nextCursor: action.page.nextCursor, loaded: true, error: null };
    }
    case 'pushed': {
      if (state.items.some((n) => n.id === action.notification.id)) return state;
      return {
        ...state,
        items: merge(state.items, [action.notification]),
        unreadCount: state.unreadCount + (action.notification.isRead ? 0 : 1),
      };
    }
    case 'unread_snapshot':
      return { ...state, items: merge(state.items, action.notifications), unreadCount: action.count };
    case 'read':
      return {
        ...state,
        items: state.items.map((n) => (action.notificationId === null || n.id === action.notificationId ? { ...n, isRead: true } : n)),
        unreadCount: action.unreadCount,
      };
    case 'cleared':
      return { ...state, items: [], nextCursor: null, unreadCount: action.unreadCount };
    case 'error':
      return { ...state, error: action.message };
    default: {
      const unreachable: never = action;
      return unreachable;
    }
  }
}

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
  const [state, dispatch] = useReducer(reducer, initialState);
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

  const channel = useChannel(
    userId ? channelName.notifications(userId) : null,
    {
      notification: ({ notification }) => dispatch({ type: 'pushed', notification }),
      unread_notifications: ({ notifications, count }) => dispatch({ type: 'unread_snapshot', notifications, count }),
      notification_read: ({ notificationId, unreadCount }) => dispatch({ type: 'read', notificationId, unreadCount }),
      notifications_cleared: ({ unreadCount }) => dispatch({ type: 'cleared', unreadCount }),
    },
    {
      onSubscribed: ({ resubscribed }) => {
        if (resubscribed) void refresh();
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
