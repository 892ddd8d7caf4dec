/**
 * What the hooks use of a tab's realtime connection: a RealtimeClient of its own (one socket per
 * tab, where tabs cannot share) or a SharedRealtimeClient (one socket per browser, see
 * shared-client.ts). Both have the same surface.
 */
import type { RealtimeClient } from '../client.ts';

export type RealtimeConnection = Pick<
  RealtimeClient,
  | 'start'
  | 'stop'
  | 'retryNow'
  | 'getSnapshot'
  | 'subscribeState'
  | 'channelStatus'
  | 'channelPosition'
  | 'send'
  | 'subscribeChannelStatus'
  | 'subscribe'
  | 'onBroadcast'
>;
