'use client';
/**
 * Whether a creator is online (at least one open socket on any WebSocket node), live from
 * `creator_{id}`: the server pushes `creator_presence` right after the subscribe and whenever it
 * changes. Nothing is shown before the server has said, nor while this tab's socket is down
 * (what it showed could be stale by then).
 */
import { useState } from 'react';
import { useChannel } from '@/hooks/useChannel.ts';
import { useWebSocket } from '@/hooks/useWebSocket.ts';
import { channelName } from '@/websocket-server/src/protocol/index.ts';

export function CreatorPresence({ creatorId }: { creatorId: string }) {
  const [online, setOnline] = useState<boolean | null>(null);
  const { state } = useWebSocket();
  const channel = useChannel(channelName.creator(creatorId), {
    creator_presence: (data) => {
      if (data.creatorId === creatorId) setOnline(data.online);
    },
  });
  if (online === null || state !== 'open' || channel.status !== 'subscribed') return null;
  return (
    <span className="muted" data-testid="creator-presence" data-online={online} title={online ? 'Online now' : 'Not online'}>
      <span
        aria-hidden
        style={{
          display: 'inline-block',
          width: 8,
          height: 8,
          borderRadius: '50%',
          marginRight: 6,
          verticalAlign: 'middle',
          background: online ? '#22a06b' : '#b3b9c4',
        }}
      />
      {online ? 'online' : 'offline'}
    </span>
  );
}
