/**
 * Control messages: what the app tells every WebSocket node about access, on one reserved broker
 * channel beside the event channels (Redis `PUBLISH <prefix>$control '{…}'`, or
 * `POST /control` without Redis). Clients can never subscribe to it: `$` is not a channel-kind
 * character.
 *
 * Two families, as in Phoenix (a broadcast to a socket id ends that user's sockets) and
 * Centrifugo (server-side unsubscribe with a reason):
 *
 * - session messages end sockets: one browser signed out (`session_revoked`, by the `sid` claim
 *   of its session token), every session of a user ended (`user_sessions_revoked`: tokens issued
 *   before `notBefore` are refused from now on), or the account is gone (`user_deleted`). Such
 *   sockets close with 4003.
 * - `entitlement_changed` names what changed (a subscription, a purchase, a post); every node
 *   re-checks only the memberships that depend on it (see websocket-server/src/access/) and sends
 *   `unsubscribed` with reason `forbidden` to each member that lost access.
 *
 * Publishers announce AFTER the database change committed, so a re-check reads the new state.
 */
import { z } from 'zod';

/** The broker channel of control messages (prefixed like every channel in Redis). */
export const CONTROL_CHANNEL = '$control';

const id = z.string().min(1).max(64);

/** One thing whose change can grant or take away access to channels. */
export const entitlementSubjectSchema = z.discriminatedUnion('kind', [
  /** A subscription of `subscriberId` to `creatorId` was created, cancelled, expired or re-tiered. */
  z.strictObject({ kind: z.literal('subscription'), subscriberId: id, creatorId: id }),
  /** `userId` bought `postId`, or the purchase was refunded. */
  z.strictObject({ kind: z.literal('purchase'), userId: id, postId: id }),
  /** A post was locked, unlocked, re-tiered or deleted. */
  z.strictObject({ kind: z.literal('post'), postId: id }),
]);
export type EntitlementSubject = z.infer<typeof entitlementSubjectSchema>;

export const ENTITLEMENT_CAUSES = [
  'subscription_created',
  'subscription_cancelled',
  'subscription_expired',
  'subscription_tier_changed',
  'purchase_granted',
  'purchase_refunded',
  'post_locked',
  'post_unlocked',
  'post_retiered',
  'post_deleted',
] as const;
export type EntitlementCause = (typeof ENTITLEMENT_CAUSES)[number];

export const controlMessageSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('session_revoked'), userId: id, sessionId: id }),
  /** `notBefore`: ms since the epoch; a token whose `iat` is earlier is no longer accepted. */
  z.strictObject({ type: z.literal('user_sessions_revoked'), userId: id, notBefore: z.number().int().nonnegative() }),
  z.strictObject({ type: z.literal('user_deleted'), userId: id }),
  z.strictObject({
    type: z.literal('entitlement_changed'),
    cause: z.enum(ENTITLEMENT_CAUSES),
    subjects: z.array(entitlementSubjectSchema).min(1).max(100),
    /** When the change committed (ms), for the revocation-latency metric. */
    at: z.number().int().nonnegative().optional(),
  }),
]);
export type ControlMessage = z.infer<typeof controlMessageSchema>;

/**
 * The key under which a membership that depends on `subject` is indexed. Channel policies
 * declare their dependencies as subjects; a control message finds the memberships by the same
 * keys, so the two can never disagree on spelling.
 */
export function subjectKey(subject: EntitlementSubject): string {
  switch (subject.kind) {
    case 'subscription':
      return `subscription:${subject.subscriberId}:${subject.creatorId}`;
    case 'purchase':
      return `purchase:${subject.userId}:${subject.postId}`;
    case 'post':
      return `post:${subject.postId}`;
    default: {
      const unreachable: never = subject;
      throw new Error(`unknown subject ${JSON.stringify(unreachable)}`);
    }
  }
}

/** Parses a control message from the broker or `POST /control`; never throws. */
export function parseControlMessage(text: string): { ok: true; message: ControlMessage } | { ok: false; reason: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  const result = controlMessageSchema.safeParse(value);
  if (result.success) return { ok: true, message: result.data };
  return { ok: false, reason: result.error.issues.map((i) => `${i.path.join('.') || 'message'}: ${i.message}`).join('; ').slice(0, 500) };
}
