/**
 * Channel names: `<kind>_<id>`. The kind decides who may subscribe (see
 * websocket-server/src/channels/), the id names the user, creator or post it is about.
 *
 * Names are matched exactly, never by prefix: a subscriber of `post_1` never receives
 * `post_12`.
 */

export const CHANNEL_KINDS = ['notifications', 'feed', 'creator', 'post', 'messages'] as const;
export type ChannelKind = (typeof CHANNEL_KINDS)[number];

/** Ids are database ids (cuid) or numbers; 64 characters is far above either. */
const ID_PATTERN = /^[A-Za-z0-9-]{1,64}$/;
const NAME_PATTERN = /^([a-z]+)_(.+)$/;

/** Longest accepted channel name, so that a client cannot make the server hold huge keys. */
export const MAX_CHANNEL_NAME_LENGTH = 96;

export interface ParsedChannel {
  readonly name: string;
  readonly kind: ChannelKind;
  readonly id: string;
}

export type ChannelParseResult =
  | { ok: true; channel: ParsedChannel }
  | { ok: false; reason: 'malformed' | 'unknown_kind' };

function isChannelKind(value: string): value is ChannelKind {
  return (CHANNEL_KINDS as readonly string[]).includes(value);
}

export function parseChannel(name: string): ChannelParseResult {
  if (name.length > MAX_CHANNEL_NAME_LENGTH) return { ok: false, reason: 'malformed' };
  const match = NAME_PATTERN.exec(name);
  if (!match) return { ok: false, reason: 'malformed' };
  const [, kind = '', id = ''] = match;
  if (!isChannelKind(kind)) return { ok: false, reason: 'unknown_kind' };
  if (!ID_PATTERN.test(id)) return { ok: false, reason: 'malformed' };
  return { ok: true, channel: { name, kind, id } };
}

/**
 * The reserved channel of operator broadcasts (`broadcast` events). It has no `<kind>_<id>`
 * form and no policy: clients never subscribe to it (a subscribe is answered
 * `reserved_channel`); the server delivers it to every authenticated socket on every node
 * (websocket-server/src/broadcast.ts). Publishers use it like any channel: Redis
 * `PUBLISH ws:broadcast …` (`SPUBLISH ws:{broadcast} …` on a Cluster) or `POST /publish`.
 */
export const BROADCAST_CHANNEL = 'broadcast';

export function isReservedChannel(name: string): boolean {
  return name === BROADCAST_CHANNEL;
}

/** `broadcast` events travel on the broadcast channel only, and it carries nothing else. */
export function eventAllowedOn(channel: string, eventType: string): boolean {
  return (channel === BROADCAST_CHANNEL) === (eventType === 'broadcast');
}

/** Builders, so that no caller ever concatenates a channel name by hand. */
export const channelName = {
  notifications: (userId: string) => `notifications_${userId}`,
  feed: (userId: string) => `feed_${userId}`,
  creator: (creatorId: string) => `creator_${creatorId}`,
  post: (postId: string) => `post_${postId}`,
  /** The user's direct messages and typing indicators (that user only). */
  messages: (userId: string) => `messages_${userId}`,
} as const satisfies Record<ChannelKind, (id: string) => string>;
