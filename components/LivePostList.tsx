'use client';
/**
 * A list of post summaries kept live by one channel: the viewer's feed (`feed_update`) or a
 * creator's page (`post_created` / `post_deleted`). New posts appear on top without a reload.
 */
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
  const [posts, setPosts] = useState(initialPosts);
  const add = (post: PostCardData) =>
    setPosts((list) => (list.some((p) => p.id === post.id) ? list : [{ likesCount: 0, commentsCount: 0, ...post }, ...list]));
  const remove = (postId: string) => setPosts((list) => list.filter((p) => p.id !== postId));

  const status = useChannel(channel, {
    feed_update: (data) => {
      if (data.reason === 'post_created' && data.post) add(data.post);
      if (data.reason === 'post_deleted') remove(data.postId);
    },
    post_created: ({ post }) => add(post),
    post_deleted: ({ postId }) => remove(postId),
  });

  return (
    <div data-testid="post-list" data-channel={status.status}>
      {posts.length === 0 && <p className="muted">{empty}</p>}
      {posts.map((post) => (
        <PostCard key={post.id} post={post} />
      ))}
    </div>
  );
}
