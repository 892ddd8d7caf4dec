'use client';
/**
 * On a locked post's page: renders the page again (no reload) when the viewer gains access
 * elsewhere — bought the post or subscribed to its author in another tab or on another device.
 * The page holds no subscription to the post's channel (it was refused), so the server has
 * nothing to re-grant; instead the grant is announced on the viewer's own notifications channel
 * (`access_granted`, lib/realtime.ts publishAccessGranted).
 *
 * A grant that committed after the page was rendered but before this channel was subscribed
 * would be missed, so each confirmation of the subscription also asks the API once whether the
 * post is still locked.
 */
import { useRouter } from 'next/navigation';
import { useCallback } from 'react';
import { api } from '@/hooks/api-client.ts';
import { useChannel } from '@/hooks/useChannel.ts';
import { channelName } from '@/websocket-server/src/protocol/index.ts';

export function UnlockWatcher({ viewerId, postId, authorId }: { viewerId: string; postId: string; authorId: string }) {
  const router = useRouter();
  const recheck = useCallback(async () => {
    const view = await api.post<{ locked: boolean }>(postId).catch(() => null);
    if (view && !view.locked) router.refresh();
  }, [postId, router]);

  useChannel(
    channelName.notifications(viewerId),
    {
      access_granted: (data) => {
        if (data.postId === postId || data.creatorId === authorId) router.refresh();
      },
    },
    { onSubscribed: () => void recheck() },
  );
  return null;
}
