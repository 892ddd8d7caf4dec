/**
 * `messages_{userId}`: the user's direct messages (`message`, one per message they send or
 * receive, from the app) and typing indicators (`typing`, from the other participant's socket,
 * see messaging/typing.ts). Readable by that user only, like notifications: nobody else may
 * learn who writes to whom. The messages themselves stay in the database; a client whose
 * position the history no longer covers reloads them over HTTP.
 */
import { allow, forbidden, type ChannelPolicy } from './policy.ts';

export const messagesPolicy: ChannelPolicy = {
  kind: 'messages',
  async authorize(principal, userId) {
    return principal.userId === userId ? allow : forbidden('direct messages are readable by their owner only');
  },
};
