'use client';
/**
 * "N viewing": the people subscribed to `post_{id}` right now on any WebSocket node (the viewer
 * included), from the server's `viewers` pushes: one right after the subscribe, then at most one
 * a second while the count changes. Hidden until the server has said, and while this tab's
 * socket is down. It shares the post channel with LivePost on the tab's one socket; `since` is
 * the page's position so that whichever of the two subscribes first, neither is taken to be
 * behind the other.
 */
import { useState } from 'react';
import { useChannel } from '@/hooks/useChannel.ts';
import { useWebSocket } from '@/hooks/useWebSocket.ts';
import { channelName, type StreamPosition } from '@/websocket-server/src/protocol/index.ts';

export function ViewerCount({ postId, since }: { postId: string; since?: StreamPosition | null }) {
  const [count, setCount] = useState<number | null>(null);
  const { state } = useWebSocket();
  const channel = useChannel(
    channelName.post(postId),
    {
      viewers: (data) => {
        if (data.postId === postId) setCount(data.count);
      },
    },
    { since },
  );
  if (count === null || state !== 'open' || channel.status !== 'subscribed') return null;
  return (
    <p className="muted" data-testid="viewer-count" data-count={count} style={{ margin: '0 0 8px' }}>
      {count} viewing
    </p>
  );
}
