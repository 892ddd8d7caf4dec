'use client';
/**
 * A list of post summaries kept live by one channel: the viewer's feed (`feed_update`) or a
 * creator's page (`post_created` / `post_deleted`). New posts appear on top without a reload.
 * After a reconnect the channel continues where it was (the server replays what was missed);
 * when it cannot (`recovered: false`) the page is rendered again by the server and the list
 * taken from that render.
 */
import { useRouter } from 'next/navigation';
import { useState } from 'react';
import { useChannel } from '@/hooks/useChannel.ts';
import { PostCard, type PostCardData } from './PostCard.tsx';

export function LivePostList({
  channel,
  initialPosts,
  empty,
}: {
  channel: string;
  initialPosts: PostCardData[];
  empty: string;
}) {
  const router = useRouter();
  const [posts, setPosts] = useState(initialPosts);
  // A new server render (after router.refresh()) brings a fresh list: it replaces ours.
  const [rendered, setRendered] = useState(initialPosts);
  if (rendered !== initialPosts) {
    setRendered(initialPosts);
    setPosts(initialPosts);
  }
  const add = (post: PostCardData) =>
    setPosts((list) => (list.some((p) => p.id === post.id) ? list : [{ likesCount: 0, commentsCount: 0, ...post }, ...list]));
  const remove = (postId: string) => setPosts((list) => list.filter((p) => p.id !== postId));

  const status = useChannel(
    channel,
    {
      feed_update: (data) => {
        if (data.reason === 'post_created' && data.post) add(data.post);
        if (data.reason === 'post_deleted') remove(data.postId);
      },
      post_created: ({ post }) => add(post),
      post_deleted: ({ postId }) => remove(postId),
    },
    {
      onSubscribed: ({ recovered }) => {
        if (recovered === false) router.refresh();
      },
    },
  );

  return (
    <div data-testid="post-list" data-channel={status.status}>
      {posts.length === 0 && <p className="muted">{empty}</p>}
      {posts.map((post) => (
        <PostCard key={post.id} post={post} />
      ))}
    </div>
  );
}
