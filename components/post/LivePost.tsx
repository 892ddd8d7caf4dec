'use client';
/**
 * A readable post with a live like count and a live comment list, fed by `post_{id}`. Counts
 * always come from the server (the API's answer or the event), never from local arithmetic, so
 * two tabs liking at once still agree. After a reconnect the post is refetched, since events
 * sent while the socket was down are not replayed. When the server ends the channel because the
 * viewer lost access (subscription cancelled, post locked), the page is rendered again by the
 * server (`router.refresh()`), which then shows the locked state, without a reload.
 */
import Link from 'next/link';
import { useRouter } from 'next/navigation';
import { useCallback, useState } from 'react';
import { api } from '@/hooks/api-client.ts';
import { useChannel } from '@/hooks/useChannel.ts';
import type { PostView } from '@/lib/domain/posts.ts';
import { channelName, type CommentPayload } from '@/websocket-server/src/protocol/index.ts';
import { CommentForm } from './CommentForm.tsx';
import { CommentList } from './CommentList.tsx';
import styles from './LivePost.module.css';

type ReadableView = Extract<PostView, { locked: false }>;

export function LivePost({ initial, viewerId }: { initial: ReadableView; viewerId: string }) {
  const postId = initial.summary.id;
  const router = useRouter();
  const [likesCount, setLikesCount] = useState(initial.likesCount);
  const [likedByMe, setLikedByMe] = useState(initial.likedByMe);
  const [comments, setComments] = useState<CommentPayload[]>(initial.comments);
  const [commentsCount, setCommentsCount] = useState(initial.commentsCount);
  const [fresh, setFresh] = useState<ReadonlySet<string>>(new Set());
  const [deleted, setDeleted] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [pending, setPending] = useState(false);

  const addComment = useCallback((comment: CommentPayload, count: number) => {
    setComments((list) => (list.some((c) => c.id === comment.id) ? list : [...list, comment]));
    setCommentsCount(count);
    setFresh((s) => new Set(s).add(comment.id));
  }, []);

  const refetch = useCallback(async () => {
    try {
      const view = await api.post<ReadableView>(postId);
      if (view.locked) return;
      setLikesCount(view.likesCount);
      setLikedByMe(view.likedByMe);
      setComments(view.comments);
      setCommentsCount(view.commentsCount);
    } catch (e) {
      setError((e as Error).message);
    }
  }, [postId]);

  const channel = useChannel(
    channelName.post(postId),
    {
      post_liked: (data) => {
        setLikesCount(data.likesCount);
        if (data.userId === viewerId) setLikedByMe(true);
      },
      post_unliked: (data) => {
        setLikesCount(data.likesCount);
        if (data.userId === viewerId) setLikedByMe(false);
      },
      comment_added: ({ comment, commentsCount: count }) => addComment(comment, count),
      comment_deleted: ({ commentId, commentsCount: count }) => {
        setComments((list) => list.filter((c) => c.id !== commentId));
        setCommentsCount(count);
      },
      post_deleted: () => setDeleted(true),
    },
    {
      onSubscribed: ({ resubscribed }) => {
        if (resubscribed) void refetch();
      },
      // A deleted post keeps its banner; otherwise the server render decides what is left to see.
      onRevoked: () => {
        if (!deleted) router.refresh();
      },
    },
  );

  async function toggleLike() {
    setPending(true);
    setError(null);
    try {
      const result = likedByMe ? await api.unlike(postId) : await api.like(postId);
      setLikedByMe(result.liked);
      setLikesCount(result.likesCount);
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setPending(false);
    }
  }

  async function removeComment(commentId: string) {
    try {
      const { commentsCount: count } = await api.deleteComment(commentId);
      setComments((list) => list.filter((c) => c.id !== commentId));
      setCommentsCount(count);
    } catch (e) {
      setError((e as Error).message);
    }
  }

  const isAuthor = initial.author.id === viewerId;
  return (
    <article className="card" data-testid="post" data-locked="false" data-channel={channel.status}>
      {deleted && <div className={styles.banner}>This post has been deleted.</div>}
      <div className="row">
        <h1 style={{ margin: 0 }}>{initial.summary.title}</h1>
        {initial.summary.isLocked && <span className="badge locked">🔒 {initial.summary.requiredTier}</span>}
      </div>
      <p className="muted">
        by <Link href={`/creators/${initial.author.id}`}>{initial.author.name}</Link>
        {initial.access === 'subscriber' && ' · unlocked by your subscription'}
        {initial.access === 'buyer' && ' · purchased'}
      </p>
      <div className={styles.content} data-testid="post-content">
        {initial.content}
      </div>
      <div className={styles.actions}>
        <button
          type="button"
          className={`button secondary ${styles.like} ${likedByMe ? styles.liked : ''}`}
          onClick={() => void toggleLike()}
          disabled={pending || deleted}
          aria-pressed={likedByMe}
          data-testid="like-button"
        >
          {likedByMe ? '♥ Liked' : '♡ Like'}
        </button>
        <span data-testid="like-count" data-count={likesCount}>
          {likesCount} {likesCount === 1 ? 'like' : 'likes'}
        </span>
        <span className="muted" data-testid="comment-count" data-count={commentsCount}>
          {commentsCount} {commentsCount === 1 ? 'comment' : 'comments'}
        </span>
        <span className="spacer" />
        {isAuthor && <DeletePostButton postId={postId} />}
      </div>
      {error && <p className="error">{error}</p>}
      <h2>Comments</h2>
      <CommentList comments={comments} fresh={fresh} viewerId={viewerId} postAuthorId={initial.author.id} onDelete={removeComment} />
      {!deleted && <CommentForm onSubmit={async (content) => {
        const { comment, commentsCount: count } = await api.comment(postId, content);
        addComment(comment, count);
      }} />}
    </article>
  );
}

function DeletePostButton({ postId }: { postId: string }) {
  const [pending, setPending] = useState(false);
  return (
    <button
      type="button"
      className="button danger"
      disabled={pending}
      onClick={async () => {
        if (!window.confirm('Delete this post?')) return;
        setPending(true);
        try {
          await api.deletePost(postId);
          window.location.assign('/');
        } catch (error) {
          window.alert(`The post could not be deleted: ${(error as Error).message}`);
        } finally {
          setPending(false);
        }
      }}
    >
      Delete post
    </button>
  );
}
