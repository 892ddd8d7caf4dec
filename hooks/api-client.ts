/**
 * Browser-side calls to the app's API routes, typed with the shapes the routes answer (which are
 * the protocol module's shapes). Throws ApiRequestError on any non-2xx answer.
 */
import type { CommentPayload, NotificationPayload, StreamPosition } from '@/websocket-server/src/protocol/index.ts';

export class ApiRequestError extends Error {
  override readonly name = 'ApiRequestError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(path, {
    method,
    credentials: 'same-origin',
    cache: 'no-store',
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  const data = (await response.json().catch(() => null)) as { message?: string } | null;
  if (!response.ok) throw new ApiRequestError(response.status, data?.message ?? `${method} ${path} answered ${response.status}`);
  return data as T;
}

/** `position`: the position of notifications_{me} the page was read at, when the API gives it. */
export type NotificationPage = {
  notifications: NotificationPayload[];
  nextCursor: string | null;
  unreadCount: number;
  position?: StreamPosition | null;
};

/** `version`: the post's counter version the answer reflects, when the API gives it (see LivePost). */
type Versioned = { version?: number };

export const api = {
  notifications: (cursor?: string, limit = 20) =>
    call<NotificationPage>('GET', `/api/notifications?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`),
  markRead: (id: string) => call<{ unreadCount: number }>('POST', `/api/notifications/${encodeURIComponent(id)}/read`),
  markAllRead: () => call<{ unreadCount: number }>('POST', '/api/notifications/read-all'),
  clearNotifications: () => call<{ unreadCount: number }>('DELETE', '/api/notifications'),
  like: (postId: string) => call<{ liked: boolean; likesCount: number } & Versioned>('POST', `/api/posts/${encodeURIComponent(postId)}/like`),
  unlike: (postId: string) => call<{ liked: boolean; likesCount: number } & Versioned>('DELETE', `/api/posts/${encodeURIComponent(postId)}/like`),
  comment: (postId: string, content: string) =>
    call<{ comment: CommentPayload; commentsCount: number } & Versioned>('POST', `/api/posts/${encodeURIComponent(postId)}/comments`, { content }),
  deleteComment: (commentId: string) =>
    call<{ commentsCount: number } & Versioned>('DELETE', `/api/comments/${encodeURIComponent(commentId)}`),
  post: <T>(postId: string) => call<T>('GET', `/api/posts/${encodeURIComponent(postId)}`),
  createPost: (input: { title: string; content: string; isLocked: boolean; requiredTier: string; priceCents: number | null }) =>
    call<{ post: { id: string } }>('POST', '/api/posts', input),
  deletePost: (postId: string) => call<{ deleted: boolean }>('DELETE', `/api/posts/${encodeURIComponent(postId)}`),
  subscribe: (creatorId: string, tier: string) =>
    call<{ created: boolean }>('POST', `/api/creators/${encodeURIComponent(creatorId)}/subscription`, { tier }),
  unsubscribe: (creatorId: string) => call<{ cancelled: boolean }>('DELETE', `/api/creators/${encodeURIComponent(creatorId)}/subscription`),
  /** Simulated payment (lib/domain/payments.ts): no provider, no money moves. */
  buyPost: (postId: string) =>
    call<{ created: boolean; purchase: { id: string; priceCents: number }; payment: { simulated: true; reference: string } | null }>(
      'POST',
      `/api/posts/${encodeURIComponent(postId)}/purchase`,
    ),
  /** Simulated payment, as buyPost. */
  tip: (creatorId: string, amountCents: number, message?: string) =>
    call<{ tip: { id: string; amountCents: number }; payment: { simulated: true; reference: string } }>('POST', '/api/tips', {
      creatorId,
      amountCents,
      ...(message ? { message } : {}),
    }),
};
