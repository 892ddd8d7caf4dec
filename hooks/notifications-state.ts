/**
 * The bell's state and the one reducer that changes it, framework-free so that it can be tested
 * without React (useNotifications.ts wires it to the socket and the API).
 *
 * Order: the state remembers the position (`{offset, epoch}` of notifications_{me}) of what it
 * last applied, from pushes and snapshots and, when the API gives one, from a page. An event at
 * or before that position is already reflected and changes nothing; a snapshot
 * (`unread_notifications`, `notifications_recovered`) older than it is ignored, so an unread
 * count never goes back to an earlier one. Notifications are de-duplicated by id.
 */
import { isEventType, type NotificationPayload, type PushFrame, type StreamPosition } from '@/websocket-server/src/protocol/index.ts';
import type { NotificationPage } from './api-client.ts';
import { isBefore, positionOf } from './realtime/subscription.ts';

export interface NotificationsState {
  items: NotificationPayload[];
  unreadCount: number;
  nextCursor: string | null;
  loaded: boolean;
  error: string | null;
  /** The position of the last state applied, null when unknown. */
  position: StreamPosition | null;
  /** Where the last `notifications_cleared` was applied: a page read before it is all gone. */
  clearedAt: StreamPosition | null;
}

/** `at`: the position the action reflects (a push's offset/epoch, a page's position). */
export type NotificationsAction =
  | { type: 'page'; page: NotificationPage; append: boolean }
  | { type: 'pushed'; notification: NotificationPayload; at?: StreamPosition | null }
  | { type: 'unread_snapshot'; notifications: NotificationPayload[]; count: number; at?: StreamPosition | null }
  | { type: 'recovered'; notifications: NotificationPayload[]; unreadCount: number; at?: StreamPosition | null }
  | { type: 'read'; notificationId: string | null; unreadCount: number; at?: StreamPosition | null }
  | { type: 'cleared'; unreadCount: number; at?: StreamPosition | null }
  | { type: 'error'; message: string };

export const initialNotificationsState: NotificationsState = {
  items: [],
  unreadCount: 0,
  nextCursor: null,
  loaded: false,
  error: null,
  position: null,
  clearedAt: null,
};

const newestFirst = (a: NotificationPayload, b: NotificationPayload) =>
  b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id);

/** `incoming` over `items`, one entry per id, newest first; `keep`: entries already held win. */
function merge(items: NotificationPayload[], incoming: NotificationPayload[], keep = false): NotificationPayload[] {
  const byId = new Map(items.map((n) => [n.id, n]));
  for (const n of incoming) if (!(keep && byId.has(n.id))) byId.set(n.id, n);
  return [...byId.values()].sort(newestFirst);
}

/** An event at `at` is already reflected by a state at `position`. */
function alreadyApplied(at: StreamPosition | null | undefined, position: StreamPosition | null): boolean {
  return !!at && !!position && at.epoch === position.epoch && at.offset <= position.offset;
}

/** A snapshot at `at` is older than a state at `position`. */
function older(at: StreamPosition | null | undefined, position: StreamPosition | null): boolean {
  return !!at && !!position && isBefore(at, position);
}

export function notificationsReducer(state: NotificationsState, action: NotificationsAction): NotificationsState {
  switch (action.type) {
    case 'page': {
      const { page } = action;
      const at = page.position ?? null;
      // Read before events this state already applied: what they said stands (the unread count
      // too); the page only adds notifications not held, unless a clear came after it.
      if (action.append || older(at, state.position)) {
        const stale = older(at, state.position);
        return {
          ...state,
          items: older(at, state.clearedAt) ? state.items : merge(state.items, page.notifications, true),
          unreadCount: stale ? state.unreadCount : page.unreadCount,
          nextCursor: page.nextCursor,
          loaded: true,
          error: null,
        };
      }
      return {
        ...state,
        items: page.notifications,
        unreadCount: page.unreadCount,
        nextCursor: page.nextCursor,
        loaded: true,
        error: null,
        position: at ?? state.position,
      };
    }
    case 'pushed': {
      if (alreadyApplied(action.at, state.position)) return state;
      const position = action.at ?? state.position;
      if (state.items.some((n) => n.id === action.notification.id)) return position === state.position ? state : { ...state, position };
      return {
        ...state,
        items: merge(state.items, [action.notification]),
        unreadCount: state.unreadCount + (action.notification.isRead ? 0 : 1),
        position,
      };
    }
    case 'unread_snapshot':
      if (older(action.at, state.position)) return state;
      return { ...state, items: merge(state.items, action.notifications), unreadCount: action.count, position: action.at ?? state.position };
    case 'recovered':
      // What was created after the newest one held, from the database, and the unread count.
      if (older(action.at, state.position)) return state;
      return { ...state, items: merge(state.items, action.notifications), unreadCount: action.unreadCount, position: action.at ?? state.position };
    case 'read':
      if (alreadyApplied(action.at, state.position)) return state;
      return {
        ...state,
        items: state.items.map((n) => (action.notificationId === null || n.id === action.notificationId ? { ...n, isRead: true } : n)),
        unreadCount: action.unreadCount,
        position: action.at ?? state.position,
      };
    case 'cleared':
      if (alreadyApplied(action.at, state.position)) return state;
      return {
        ...state,
        items: [],
        nextCursor: null,
        unreadCount: action.unreadCount,
        position: action.at ?? state.position,
        clearedAt: action.at ?? state.clearedAt,
      };
    case 'error':
      return { ...state, error: action.message };
    default: {
      const unreachable: never = action;
      return unreachable;
    }
  }
}

/** The action for a push of notifications_{me}; null for events the bell does not show. */
export function notificationsActionFor(frame: PushFrame): NotificationsAction | null {
  if (!isEventType(frame.type)) return null;
  const at = positionOf(frame);
  switch (frame.type) {
    case 'notification':
      return { type: 'pushed', notification: frame.data.notification, at };
    case 'unread_notifications':
      return { type: 'unread_snapshot', notifications: frame.data.notifications, count: frame.data.count, at };
    case 'notifications_recovered':
      return { type: 'recovered', notifications: frame.data.notifications, unreadCount: frame.data.unreadCount, at };
    case 'notification_read':
      return { type: 'read', notificationId: frame.data.notificationId, unreadCount: frame.data.unreadCount, at };
    case 'notifications_cleared':
      return { type: 'cleared', unreadCount: frame.data.unreadCount, at };
    default:
      return null;
  }
}

/** The newest notification held: what a recovery asks the database to continue after. */
export function newestNotificationId(state: NotificationsState): string | undefined {
  return state.items[0]?.id;
}
