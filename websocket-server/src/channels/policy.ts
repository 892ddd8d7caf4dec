/**
 * A channel kind's rules, in the manner of a Phoenix channel's `join/3`: one file per kind
 * exports one `ChannelPolicy`. Refusals are values; a thrown error means the lookup itself
 * failed and becomes `internal_error`.
 */
import type { Directory } from '../data/directory.ts';
import type { PresenceEvent } from '../presence/presence.ts';
import type { PresenceReader } from '../presence/tracker.ts';
import type { ChannelKind, EntitlementSubject, EventData } from '../protocol/index.ts';

export interface Principal {
  readonly userId: string;
}

/**
 * An allowed subscription is a grant, and a grant knows how long it holds: `dependsOn` names
 * what could take it away (the app announces changes to those subjects, see
 * protocol/control.ts), `validUntil` when it lapses by itself (a subscription's `expiresAt`,
 * ms since the epoch). The server re-checks the membership at either.
 */
export type Grant = { ok: true; dependsOn: readonly EntitlementSubject[]; validUntil: number | null };
export type Refusal = { ok: false; code: 'forbidden' | 'not_found'; message: string };
export type Decision = Grant | Refusal;

export interface ChannelContext {
  readonly directory: Directory;
  readonly now: () => Date;
  readonly unreadNotificationsLimit: number;
  /** Presence on every node (presence/tracker.ts), for the kinds that push it. */
  readonly presence?: PresenceReader;
}

/** A push sent to one new subscriber only, right after its `subscribed` reply. */
export type InitialPush =
  | { type: 'unread_notifications'; data: EventData<'unread_notifications'> }
  | { type: 'notifications_recovered'; data: EventData<'notifications_recovered'> };

export interface ChannelPolicy {
  readonly kind: ChannelKind;
  authorize(principal: Principal, id: string, context: ChannelContext): Promise<Decision>;
  /** The channel's current state, for a subscriber without a position. */
  initialPush?(principal: Principal, id: string, context: ChannelContext): Promise<InitialPush | null>;
  /** When history could not cover a subscriber's `since`: what it missed, from the database. */
  recoveryPush?(principal: Principal, id: string, context: ChannelContext, lastNotificationId: string): Promise<InitialPush | null>;
  /**
   * State that history does not keep (presence): pushed after every subscribe, recovered or not,
   * without a position and with an id of its own, so a client applies it as a live push.
   */
  statePush?(principal: Principal, id: string, context: ChannelContext): Promise<PresenceEvent | null>;
}

/** Allowed for as long as the connection lives (its owner's own channels). */
export const allow: Grant = { ok: true, dependsOn: [], validUntil: null };
export const allowWhile = (dependsOn: readonly EntitlementSubject[], validUntil: number | null = null): Grant => ({
  ok: true,
  dependsOn,
  validUntil,
});
export const forbidden = (message: string): Refusal => ({ ok: false, code: 'forbidden', message });
export const notFound = (message: string): Refusal => ({ ok: false, code: 'not_found', message });
