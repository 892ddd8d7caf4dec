/**
 * Rows → the shapes the protocol module describes. The API answers with the same shapes that
 * the socket pushes, so a component renders a fetched list and a pushed item with one code path.
 */
import type { CommentPayload, PostSummary } from '@/websocket-server/src/protocol/index.ts';

/** One mapping for the API and the WebSocket server alike. */
export { toNotificationPayload } from '@/websocket-server/src/protocol/index.ts';

type PostRow = {
  id: string;
  authorId: string;
  title: string;
  content: string;
  isLocked: boolean;
  requiredTier: string;
  createdAt: Date;
};

const EXCERPT_LENGTH = 160;

/**
 * What public channels and lists may say about a post. A locked post's summary never carries
 * its content, not even an excerpt: creator and feed channels are open to non-subscribers.
 */
export function toPostSummary(post: PostRow): PostSummary {
  return {
    id: post.id,
    authorId: post.authorId,
    title: post.title.slice(0, 300),
    isLocked: post.isLocked,
    createdAt: post.createdAt.toISOString(),
    ...(post.isLocked
      ? { requiredTier: post.requiredTier }
      : { excerpt: post.content.length > EXCERPT_LENGTH ? `${post.content.slice(0, EXCERPT_LENGTH - 1)}…` : post.content }),
  };
}

type CommentRow = { id: string; postId: string; authorId: string; content: string; createdAt: Date; author: { name: string } };

export function toCommentPayload(comment: CommentRow): CommentPayload {
  return {
    id: comment.id,
    postId: comment.postId,
    authorId: comment.authorId,
    authorName: comment.author.name,
    content: comment.content,
    createdAt: comment.createdAt.toISOString(),
  };
}
