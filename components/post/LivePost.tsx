'use client';
/**
 * A readable post with a live like count and a live comment list, fed by `post_{id}`. Counts
 * always come from the server (the API's answer or the event), never from local arithmetic, so
 * two tabs liking at once still agree, and never go backwards: each state carries the post's
 * counter version (`data.version`, the page's and the API's), and one older than the version
 * already applied is ignored (versions.ts). The channel continues from `initialPosition` (where
 * the page was rendered), and after a reconnect from its last applied event: the server replays
 * what was missed. Only when it cannot (`recovered: false`) is the post refetched. When the
 * server ends the channel because the viewer lost access (subscription cancelled, post locked),
 * the page is rendered again by the server (`router.refresh()`), which then shows the locked
 * state, without a reload.
 */
import Link from 'next/link';
import { useRouter } from 'next/navigation';
import { useCallback, useRef, useState } from 'react';
import { api } from '@/hooks/api-client.ts';
import { useChannel } from '@/hooks/useChannel.ts';
import type { PostView } from '@/lib/domain/posts.ts';
import { channelName, type CommentPayload, type StreamPosition } from '@/websocket-server/src/protocol/index.ts';
import { CommentForm } from './CommentForm.tsx';
import { CommentList } from './CommentList.tsx';
import styles from './LivePost.module.css';
import { CounterVersion, versionOf } from './versions.ts';
import { HeartIcon, LockIcon } from '../icons.tsx';

type ReadableView = Extract<PostView, { locked: false }>;

/** `list` with the comments of `fetched` it lacks, unless deleted since; oldest first. */
function withFetched(list: CommentPayload[], fetched: CommentPayload[], deleted: ReadonlySet<string>): CommentPayload[] {
  const held = new Set(list.map((c) => c.id));
  const added = fetched.filter((c) => !held.has(c.id) && !deleted.has(c.id));
  if (added.length === 0) return list;
  return [...list, ...added].sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
}

export function LivePost({
  initial,
  viewerId,
  initialPosition,
}: {
  initial: ReadableView;
  viewerId: string;
  /** The position of `post_{id}` the page was rendered at: the subscribe continues from there. */
  initialPosition?: StreamPosition | null;
}) {
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
  // Counts by version, one gate each, so that an answer about likes does not lose to a later
  // comment event; whether the viewer likes it by the versions of what spoke about the viewer.
  // The comment list goes by identity: a comment is shown unless its deletion was seen.
  const [likesVersion] = useState(() => new CounterVersion(versionOf(initial)));
  const [likedVersion] = useState(() => new CounterVersion(versionOf(initial)));
  const [commentsVersion] = useState(() => new CounterVersion(versionOf(initial)));
  /** Comments this page saw deleted: a replay or an older refetch must not bring them back. */
  const deletedComments = useRef(new Set<string>());

  const addComment = useCallback(
    (comment: CommentPayload, count: number, version: unknown) => {
      if (commentsVersion.admit(version)) setCommentsCount(count);
      if (deletedComments.current.has(comment.id)) return;
      setComments((list) => (list.some((c) => c.id === comment.id) ? list : [...list, comment]));
      setFresh((s) => new Set(s).add(comment.id));
    },
    [commentsVersion],
  );

  const dropComment = useCallback(
    (commentId: string, count: number, version: unknown) => {
      deletedComments.current.add(commentId);
      setComments((list) => list.filter((c) => c.id !== commentId));
      if (commentsVersion.admit(version)) setCommentsCount(count);
    },
    [commentsVersion],
  );

  const setLikes = useCallback(
    (count: number, version: unknown, liked?: boolean) => {
      if (likesVersion.admit(version)) setLikesCount(count);
      if (liked !== undefined && likedVersion.admit(version)) setLikedByMe(liked);
    },
    [likesVersion, likedVersion],
  );

  // Only when the channel could not continue from where this page was (`recovered: false`).
  const refetch = useCallback(async () => {
    try {
      const view = await api.post<ReadableView>(postId);
      if (view.locked) return;
      const version = versionOf(view);
      setLikes(view.likesCount, version, view.likedByMe);
      if (commentsVersion.admit(version)) {
        setComments(view.comments.filter((c) => !deletedComments.current.has(c.id)));
        setCommentsCount(view.commentsCount);
      } else {
        // Read before events applied meanwhile: they stand; it only adds comments not held.
        setComments((list) => withFetched(list, view.comments, deletedComments.current));
      }
    } catch (e) {
      setError((e as Error).message);
    }
  }, [postId, setLikes, commentsVersion]);

  const channel = useChannel(
    channelName.post(postId),
    {
      post_liked: (data) => setLikes(data.likesCount, data.version, data.userId === viewerId ? true : undefined),
      post_unliked: (data) => setLikes(data.likesCount, data.version, data.userId === viewerId ? false : undefined),
      comment_added: ({ comment, commentsCount: count, version }) => addComment(comment, count, version),
      comment_deleted: ({ commentId, commentsCount: count, version }) => dropComment(commentId, count, version),
      post_deleted: () => setDeleted(true),
    },
    {
      since: initialPosition ?? null,
      // Replayed, or nothing to recover: the state is whole. Otherwise events were lost.
      onSubscribed: ({ recovered }) => {
        if (recovered === false) void refetch();
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
      setLikes(result.likesCount, result.version, result.liked);
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setPending(false);
    }
  }

  async function removeComment(commentId: string) {
    try {
      const { commentsCount: count, version } = await api.deleteComment(commentId);
      dropComment(commentId, count, version);
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
        {initial.summary.isLocked && <span className="badge locked"><LockIcon /> {initial.summary.requiredTier}</span>}
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
          <HeartIcon filled={likedByMe} /> {likedByMe ? 'Liked' : 'Like'}
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
        const { comment, commentsCount: count, version } = await api.comment(postId, content);
        addComment(comment, count, version);
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
