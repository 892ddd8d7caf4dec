/**
 * Wire frames. Three envelopes, as in Centrifugo and Phoenix: a client request carrying an
 * optional `id`, a reply echoing that `id` (a result or an error), and a push carrying a
 * `channel`. Everything is JSON text.
 */
import { z } from 'zod';
import { MAX_CHANNEL_NAME_LENGTH } from './channels.ts';
import type { ErrorCode, UnsubscribeReason } from './codes.ts';
import { EVENT_TYPES, eventDataSchemas, isEventType, type EventData, type EventType } from './events.ts';

/** Request ids are chosen by the client and echoed verbatim. */
export const requestIdSchema = z.union([z.number().int().safe(), z.string().max(64)]);
export type RequestId = z.infer<typeof requestIdSchema>;

const channelField = z.string().min(1).max(MAX_CHANNEL_NAME_LENGTH);

/** Far above a real session token (~500 bytes); next-auth chunks cookies past ~4 KB. */
export const MAX_TOKEN_LENGTH = 8 * 1024;

/** Where a client is in a channel's stream: the last event it applied. */
export const streamPositionSchema = z.strictObject({
  offset: z.number().int().nonnegative().safe(),
  epoch: z.string().min(1).max(64),
});

export const clientFrameSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('subscribe'),
    channel: channelField,
    id: requestIdSchema.optional(),
    /** Replay every event after this position before any live one (see history.ts). */
    since: streamPositionSchema.optional(),
    /**
     * notifications_ only: the newest notification the client has. When the history cannot
     * cover `since`, the server sends the notifications created after it from the database.
     */
    lastNotificationId: z.string().min(1).max(64).optional(),
  }),
  z.strictObject({ type: z.literal('unsubscribe'), channel: channelField, id: requestIdSchema.optional() }),
  z.strictObject({ type: z.literal('ping'), id: requestIdSchema.optional() }),
  /** A fresh session token of the same user, sent before the current one expires. */
  z.strictObject({ type: z.literal('refresh'), token: z.string().min(1).max(MAX_TOKEN_LENGTH), id: requestIdSchema.optional() }),
  /**
   * The sender is typing (true) or stopped (false) in a conversation it takes part in: the server
   * forwards it as a `typing` event to the other participant's `messages_` channel, never stored.
   * No reply when forwarded; `forbidden` (not a participant, or no such conversation) and
   * `rate_limited` (more than 2 a second for one conversation) are answered as errors.
   */
  z.strictObject({
    type: z.literal('typing'),
    conversationId: z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'not a valid conversation id'),
    typing: z.boolean(),
    id: requestIdSchema.optional(),
  }),
]);
export type ClientFrame = z.infer<typeof clientFrameSchema>;
const CLIENT_FRAME_TYPES: readonly string[] = clientFrameSchema.options.map((option) => option.shape.type.value);

/** `expiresAt`: when the session token expires (ms since the epoch); refresh before it. */
export type ConnectedFrame = { type: 'connected'; userId: string; connectionId: string; expiresAt: number };
/**
 * `offset`/`epoch`: the channel's position when the subscription began; every later push has a
 * greater offset. `recovered` (only when the subscribe had `since`): true when every event after
 * `since` follows (replayed, then live); false when the history no longer covers it and the
 * client must reload its state.
 */
export type SubscribedFrame = {
  type: 'subscribed';
  channel: string;
  id?: RequestId;
  offset: number;
  epoch: string;
  recovered?: boolean;
};
/**
 * The reply to an `unsubscribe` (with its `id`), or, with a `reason` and no `id`, the server
 * ending the subscription on its own because access was lost. Nothing more of that channel
 * follows; a client may subscribe again later (and be refused until access returns).
 */
export type UnsubscribedFrame = { type: 'unsubscribed'; channel: string; id?: RequestId; reason?: UnsubscribeReason; message?: string };
export type PongFrame = { type: 'pong'; id?: RequestId; ts: number };
/** The reply to a `refresh`: the connection now lives until the new token's expiry. */
export type RefreshedFrame = { type: 'refreshed'; id?: RequestId; expiresAt: number };
export type ErrorFrame = {
  type: 'error';
  id?: RequestId;
  code: ErrorCode;
  message: string;
  channel?: string;
  /** With `rate_limited` and `internal_error`: wait at least this long before retrying (ms). */
  retryAfterMs?: number;
};

/** `offset`/`epoch` are present on events published with history (see history.ts). */
export type PushFrame<T extends EventType = EventType> = {
  [K in T]: { type: K; channel: string; data: EventData<K>; id: string; ts: number; offset?: number; epoch?: string };
}[T];

export type ReplyFrame = SubscribedFrame | UnsubscribedFrame | PongFrame | RefreshedFrame | ErrorFrame;
export type ServerFrame = ConnectedFrame | ReplyFrame | PushFrame;

/** The fields of a published event besides `type` and `data` (see publishedEventSchema). */
const publishedEnvelope = {
  id: z.string().min(1).max(64).optional(),
  ts: z.number().int().nonnegative().optional(),
  /** Set by the broker's history script, never by a publisher. */
  offset: z.number().int().positive().safe().optional(),
  epoch: z.string().min(1).max(64).optional(),
};

/** Every top-level field a published event may have; others are dropped (push-frames.ts). */
export const PUBLISHED_EVENT_FIELDS: ReadonlySet<string> = new Set(['type', 'data', ...Object.keys(publishedEnvelope)]);

/**
 * What a publisher hands to Redis (`PUBLISH ws:<channel> …`) or to `POST /publish`. One object
 * schema per event type, chosen by `type` (a discriminated union): the server checks every
 * event it receives against it, once per node, so this is on the delivery path and one lookup
 * plus one compiled object check is cheaper than a generic envelope followed by a refinement.
 */
export const publishedEventSchema = z.discriminatedUnion(
  'type',
  EVENT_TYPES.map((type) => z.object({ type: z.literal(type), data: eventDataSchemas[type], ...publishedEnvelope })) as unknown as [
    PublishedEventSchemaOf<EventType>,
    ...PublishedEventSchemaOf<EventType>[],
  ],
);
type PublishedEventSchemaOf<T extends EventType> = z.ZodObject<
  { type: z.ZodLiteral<T>; data: (typeof eventDataSchemas)[T] } & typeof publishedEnvelope
>;
export type PublishedEvent = z.infer<typeof publishedEventSchema>;

/** Most channels one `POST /publish` may name (a creator's subscribers' feeds, in batches). */
export const MAX_PUBLISH_CHANNELS = 1000;

/**
 * The body of `POST /publish`: one event for `channel`, or the same event for each of
 * `channels` (one request, one serialization, whatever the number of channels).
 */
export const publishRequestSchema = z
  .object({
    channel: channelField.optional(),
    channels: z.array(channelField).min(1).max(MAX_PUBLISH_CHANNELS).optional(),
    type: z.string(),
    data: z.unknown(),
    id: z.string().min(1).max(64).optional(),
  })
  .refine((body) => (body.channel === undefined) !== (body.channels === undefined), {
    message: 'give exactly one of channel or channels',
    path: ['channel'],
  });

/** Parses one client frame from raw text; never throws. */
export function parseClientFrame(
  text: string,
): { ok: true; frame: ClientFrame } | { ok: false; id?: RequestId; message: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, message: 'frame is not valid JSON' };
  }
  const result = clientFrameSchema.safeParse(value);
  if (result.success) return { ok: true, frame: result.data };
  const id = requestIdSchema.safeParse((value as { id?: unknown } | null)?.id);
  const type = (value as { type?: unknown } | null)?.type;
  const message =
    typeof value !== 'object' || value === null || Array.isArray(value)
      ? 'frame must be a JSON object'
      : typeof type !== 'string' || !CLIENT_FRAME_TYPES.includes(type)
        ? `unknown frame type ${describeType(type)}`
        : `invalid ${type} frame: ${result.error.issues.map((i) => `${i.path.join('.') || 'frame'} ${i.message}`).join('; ')}`;
  return id.success && id.data !== undefined ? { ok: false, id: id.data, message } : { ok: false, message };
}

/**
 * A short description of whatever a client put in `type`. Never JSON.stringify the value: a
 * client can nest it thousands of levels deep within maxPayload, and stringifying that
 * overflows the stack.
 */
function describeType(type: unknown): string {
  if (typeof type === 'string') return JSON.stringify(type.slice(0, 32));
  if (type === null || type === undefined) return 'null';
  return Array.isArray(type) ? 'of an array' : `of type ${typeof type}`;
}

export function isPushFrame(frame: ServerFrame): frame is PushFrame {
  return isEventType(frame.type);
}

