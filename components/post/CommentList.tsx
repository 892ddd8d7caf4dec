import type { CommentPayload } from '@/websocket-server/src/protocol/index.ts';
import { timeAgo } from '../time.ts';
import styles from './LivePost.module.css';

export function CommentList({
  comments,
  fresh,
  viewerId,
  postAuthorId,
  onDelete,
}: {
  comments: CommentPayload[];
  /** Ids that arrived while the page was open, briefly highlighted. */
  fresh: ReadonlySet<string>;
  viewerId: string;
  postAuthorId: string;
  onDelete: (commentId: string) => void;
}) {
  if (comments.length === 0) return <p className="muted" data-testid="comment-list-empty">No comments yet.</p>;
  return (
    <ul className={styles.comments} data-testid="comment-list">
      {comments.map((c) => (
        <li key={c.id} className={`${styles.comment} ${fresh.has(c.id) ? styles.fresh : ''}`} data-testid="comment-item" data-comment-id={c.id}>
          <div className={styles.commentHead}>
            <strong>{c.authorName}</strong>
            <time className="muted" dateTime={c.createdAt} suppressHydrationWarning>
              {timeAgo(c.createdAt)}
            </time>
            <span className="spacer" />
            {(c.authorId === viewerId || postAuthorId === viewerId) && (
              <button type="button" className="button ghost" onClick={() => onDelete(c.id)}>
                Delete
              </button>
            )}
          </div>
          <div className={styles.commentBody}>{c.content}</div>
        </li>
      ))}
    </ul>
  );
}
