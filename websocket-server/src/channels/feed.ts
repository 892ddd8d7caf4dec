/** `feed_{userId}`: updates to the user's own feed (posts of creators they follow). */
import { allow, forbidden, type ChannelPolicy } from './policy.ts';

export const feedPolicy: ChannelPolicy = {
  kind: 'feed',
  async authorize(principal, userId) {
    return principal.userId === userId ? allow : forbidden('a feed is readable by its owner only');
  },
};
