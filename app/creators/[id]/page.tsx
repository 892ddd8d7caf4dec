import { notFound, redirect } from 'next/navigation';
import { CreatorPresence } from '@/components/CreatorPresence.tsx';
import { LivePostList } from '@/components/LivePostList.tsx';
import { SubscribeButton } from '@/components/SubscribeButton.tsx';
import { TipForm } from '@/components/TipForm.tsx';
import { currentUser } from '@/lib/auth.ts';
import { db } from '@/lib/db.ts';
import { postsOfCreator } from '@/lib/domain/posts.ts';
import { activeSubscriptionWhere } from '@/lib/domain/subscribers.ts';
import { subscriptionOf } from '@/lib/domain/subscriptions.ts';
import { channelName } from '@/websocket-server/src/protocol/index.ts';

const ID = /^[A-Za-z0-9-]{1,64}$/;

export default async function CreatorPage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  const user = await currentUser();
  if (!user) redirect(`/signin?callbackUrl=/creators/${encodeURIComponent(id)}`);
  if (!ID.test(id)) notFound();
  const creator = await db().user.findUnique({
    where: { id },
    select: { id: true, name: true, bio: true, isCreator: true, _count: { select: { subscribers: { where: activeSubscriptionWhere() } } } },
  });
  if (!creator?.isCreator) notFound();
  const [posts, subscription] = await Promise.all([postsOfCreator(id), subscriptionOf(user.id, id)]);
  const own = user.id === id;
  return (
    <>
      <div className="card">
        <div className="row">
          <h1 style={{ margin: 0 }}>{creator.name}</h1>
          <CreatorPresence creatorId={id} />
          <span className="spacer" />
          {!own && <SubscribeButton creatorId={id} initial={subscription} />}
        </div>
        {creator.bio && <p>{creator.bio}</p>}
        <p className="muted">{creator._count.subscribers} subscribers</p>
      </div>
      {!own && <TipForm creatorId={id} />}
      <h2>Posts</h2>
      <LivePostList channel={channelName.creator(id)} initialPosts={posts} empty="No posts yet." />
    </>
  );
}
