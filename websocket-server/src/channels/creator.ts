/**
 * `creator_{creatorId}`: public activity of a creator (new posts as summaries, profile changes).
 * Any signed-in user may read it, so nothing private is ever published here: a new subscriber,
 * for example, is told to the creator's own notifications channel instead. Whether the creator
 * is online (has an open socket on any node) is public too: `creator_presence`.
 */
import { channelName } from '../protocol/index.ts';
import { allow, notFound, type ChannelPolicy } from './policy.ts';

export const creatorPolicy: ChannelPolicy = {
  kind: 'creator',
  async authorize(_principal, creatorId, { directory }) {
    return (await directory.creatorExists(creatorId)) ? allow : notFound('no such creator');
  },
  // Whether the creator is online now (presence/): `creator_presence`.
  async statePush(_principal, creatorId, { presence }) {
    return (await presence?.state(channelName.creator(creatorId))) ?? null;
  },
};
