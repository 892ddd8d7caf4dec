/**
 * A channel kind's rules, in the manner of a Phoenix channel's `join/3`: one file per kind
 * exports one `ChannelPolicy`. Refusals are values; a thrown error means the lookup itself
 * failed and becomes `internal_error`.
 */
import type { Directory } from '../data/directory.ts';
import type { ChannelKind, EventData } from '../protocol/index.ts';

export interface Principal {
  readonly userId: string;
}

export type Refusal = { ok: false; code: 'forbidden' | 'not_found'; message: string };
export type Decision = { ok: true } | Refusal;

export interface ChannelContext {
  readonly directory: Directory;
  readonly now: () => Date;
  readonly unreadNotificationsLimit: number;
}

/** A push sent to one new subscriber only, right after its `subscribed` reply. */
export type InitialPush = { type: 'unread_notifications'; data: EventData<'unread_notifications'> };

export interface ChannelPolicy {
  readonly kind: ChannelKind;
  authorize(principal: Principal, id: string, context: ChannelContext): Promise<Decision>;
  initialPush?(principal: Principal, id: string, context: ChannelContext): Promise<InitialPush | null>;
}

export const allow: Decision = { ok: true };
export const forbidden = (message: string): Refusal => ({ ok: false, code: 'forbidden', message });
export const notFound = (message: string): Refusal => ({ ok: false, code: 'not_found', message });
