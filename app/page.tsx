import Link from 'next/link';
import { redirect } from 'next/navigation';
import { LivePostList } from '@/components/LivePostList.tsx';
import { currentUser } from '@/lib/auth.ts';
import { feedFor } from '@/lib/domain/posts.ts';
import { channelName } from '@/websocket-server/src/protocol/index.ts';

export default async function FeedPage() {
  const user = await currentUser();
  if (!user) redirect('/signin');
  const { posts, creatorIds } = await feedFor(user.id);
  return (
    <>
      <h1>Your feed</h1>
      {creatorIds.length === 0 && (
        <p className="muted">
          You do not follow anyone yet. <Link href="/creators">Find creators</Link>.
        </p>
      )}
      <LivePostList channel={channelName.feed(user.id)} initialPosts={posts} empty="No posts yet from the creators you follow." />
    </>
  );
}
