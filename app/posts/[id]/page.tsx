import Link from 'next/link';
import { notFound, redirect } from 'next/navigation';
import { LockIcon } from '@/components/icons.tsx';
import { LivePost } from '@/components/post/LivePost.tsx';
import { BuyButton } from '@/components/post/BuyButton.tsx';
import { UnlockWatcher } from '@/components/post/UnlockWatcher.tsx';
import { ViewerCount } from '@/components/post/ViewerCount.tsx';
import { currentUser } from '@/lib/auth.ts';
import { postForViewer } from '@/lib/domain/posts.ts';
import { channelPosition } from '@/lib/realtime.ts';
import { channelName } from '@/websocket-server/src/protocol/index.ts';

const ID = /^[A-Za-z0-9-]{1,64}$/;

export default async function PostPage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  const user = await currentUser();
  if (!user) redirect(`/signin?callbackUrl=/posts/${encodeURIComponent(id)}`);
  if (!ID.test(id)) notFound();
  // The channel's position BEFORE the post is read: the client subscribes with `since` it, so
  // every event committed after this read reaches it, none falls between render and subscribe
  // (an event the render already reflects may come too: counters carry `version`).
  const position = await channelPosition(channelName.post(id));
  const view = await postForViewer(user.id, id);
  if (!view) notFound();

  if (view.locked) {
    // Decided by the same rule as the WebSocket server's post channel (postAccess): no content,
    // no comments and no subscription to the post's channel for viewers without access.
    return (
      <article className="card" data-testid="post" data-locked="true">
        <UnlockWatcher viewerId={user.id} postId={id} authorId={view.author.id} />
        <div className="row">
          <h1 style={{ margin: 0 }}>{view.summary.title}</h1>
          <span className="badge locked"><LockIcon /> {view.summary.requiredTier}</span>
        </div>
        <p className="muted">
          by <Link href={`/creators/${view.author.id}`}>{view.author.name}</Link>
        </p>
        <div className="card" data-testid="locked-notice" style={{ background: '#fffaf0' }}>
          <strong>This post is locked.</strong>
          <p>
            Subscribe to {view.author.name} at the {view.summary.requiredTier} tier or above to read it, see its comments and
            follow them live.
          </p>
          <Link className="button" href={`/creators/${view.author.id}`}>
            See subscription options
          </Link>
          {view.priceCents !== null && (
            // Or buy this one post (a simulated payment); the page renders again, unlocked.
            <BuyButton postId={id} priceCents={view.priceCents} />
          )}
        </div>
      </article>
    );
  }
  return (
    <>
      <ViewerCount postId={id} since={position} />
      <LivePost initial={view} viewerId={user.id} initialPosition={position} />
    </>
  );
}
