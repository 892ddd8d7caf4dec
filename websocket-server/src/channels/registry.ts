/**
 * Maps a channel name to its kind's policy. Typed as a record over every kind in the protocol,
 * so adding a kind there fails to compile until its policy file exists here. Unknown kinds and
 * malformed names are refused before any lookup (deny by default).
 */
import { isReservedChannel, parseChannel, type ChannelKind, type ParsedChannel } from '../protocol/index.ts';
import { creatorPolicy } from './creator.ts';
import { feedPolicy } from './feed.ts';
import { messagesPolicy } from './messages.ts';
import { notificationsPolicy } from './notifications.ts';
import type { ChannelContext, ChannelPolicy, Grant, Principal, Refusal } from './policy.ts';
import { postPolicy } from './post.ts';

export const policies: Readonly<Record<ChannelKind, ChannelPolicy>> = {
  notifications: notificationsPolicy,
  feed: feedPolicy,
  creator: creatorPolicy,
  post: postPolicy,
  messages: messagesPolicy,
};

export type SubscribeDecision =
  | { ok: true; channel: ParsedChannel; policy: ChannelPolicy; grant: Grant }
  | Refusal
  | { ok: false; code: 'invalid_channel' | 'reserved_channel'; message: string };

export async function authorizeSubscription(
  principal: Principal,
  channelName: string,
  context: ChannelContext,
): Promise<SubscribeDecision> {
  // Reserved channels have no policy: the server delivers them to every socket (broadcast.ts).
  if (isReservedChannel(channelName)) {
    return { ok: false, code: 'reserved_channel', message: `${channelName} is delivered to every connection without a subscribe; listen for its events instead` };
  }
  const parsed = parseChannel(channelName);
  if (!parsed.ok) {
    const message = parsed.reason === 'unknown_kind' ? 'unknown channel kind' : 'malformed channel name';
    return { ok: false, code: 'invalid_channel', message };
  }
  const policy = policies[parsed.channel.kind];
  const decision = await policy.authorize(principal, parsed.channel.id, context);
  return decision.ok ? { ok: true, channel: parsed.channel, policy, grant: decision } : decision;
}
