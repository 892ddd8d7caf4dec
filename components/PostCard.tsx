import Link from 'next/link';
import type { PostSummary } from '@/websocket-server/src/protocol/index.ts';
import { CommentIcon, HeartIcon, LockIcon } from './icons.tsx';

export type PostCardData = PostSummary & { authorName?: unknown; likesCount?: number; commentsCount?: number };

/** A post in a list. Only the summary: a locked post shows its tier, never its content. */
export function PostCard({ post }: { post: PostCardData }) {
  const authorName = typeof post.authorName === 'string' ? post.authorName : null;
  return (
    <article className="card" data-testid="post-card" data-post-id={post.id}>
      <div className="row">
        <Link href={`/posts/${post.id}`}>
          <strong>{post.title}</strong>
        </Link>
        {post.isLocked && <span className="badge locked"><LockIcon /> {post.requiredTier ?? 'subscribers'}</span>}
        <span className="spacer" />
        <time className="muted" dateTime={post.createdAt} suppressHydrationWarning>
          {new Date(post.createdAt).toLocaleDateString()}
        </time>
      </div>
      {post.excerpt && <p>{post.excerpt}</p>}
      <div className="row muted">
        {authorName && (
          <span>
            by <Link href={`/creators/${post.authorId}`}>{authorName}</Link>
          </span>
        )}
        {post.likesCount !== undefined && <span aria-label={`${post.likesCount} likes`}><HeartIcon /> {post.likesCount}</span>}
        {post.commentsCount !== undefined && <span aria-label={`${post.commentsCount} comments`}><CommentIcon /> {post.commentsCount}</span>}
      </div>
    </article>
  );
}
