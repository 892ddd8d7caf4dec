/**
 * The channels of one connection, each a small state machine:
 *
 *   (none) ──subscribe: authorize, join, snapshot──▶ joining ──▶ live ◀──kept── holding
 *                                                      │          │ entitlement     │
 *                                                      ▼          ▼ change/expiry   ▼ refused
 *                                                   (none)     holding ────────▶ (none) + unsubscribed{reason}
 *
 * - Commands on one channel run one after another (a per-channel promise chain), so an
 *   `unsubscribe` sent while its `subscribe` is in flight is answered after it, and nothing of
 *   the channel is delivered after the `unsubscribed` reply.
 * - While joining or holding, pushes of the channel wait in a bounded per-channel queue: a
 *   `subscribed` reply and the unread snapshot precede them, and a member whose access is being
 *   re-checked receives nothing more until the check says it may.
 * - If the snapshot read fails, the membership is undone and the client gets a retryable
 *   `internal_error` (never `subscribed` followed by an error).
 */
import { randomUUID } from 'node:crypto';
import { authorizeSubscription } from './channels/registry.ts';
import type { ChannelContext, Grant, Principal } from './channels/policy.ts';
import { GrantRecord, type GrantHolder } from './access/grants.ts';
import type { Reauthorizer } from './access/reauthorizer.ts';
import type { Hub, HubMember } from './hub.ts';
import type { KeyedBuckets } from './limits/keyed-buckets.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import type { Broker } from './broker/broker.ts';
import { coversSince } from './broker/history-script.ts';
import type { Continuity } from './history/continuity.ts';
import { parsePush } from './history/push-frames.ts';
import type { PresenceHooks } from './presence/tracker.ts';
import { MAX_RECOVERY_EVENTS, type ErrorCode, type RequestId, type ServerFrame, type StreamPosition, type UnsubscribeReason } from './protocol/index.ts';

export interface SubscriptionLimits {
  maxSubscriptions: number;
  /** Bytes that may wait for one socket, held pushes included. */
  maxBufferedBytes: number;
}

export interface SubscriptionsDeps {
  hub: Hub;
  broker: Broker;
  continuity: Continuity;
  channelContext: ChannelContext;
  metrics: Metrics;
  reauthorizer: Reauthorizer;
  /** Subscribes per user per second (each may read the database). */
  subscribeBudget: KeyedBuckets;
  limits: SubscriptionLimits;
  /** Told of every membership that starts and ends (viewers of post_ channels). */
  presence?: PresenceHooks;
}

/** What the connection offers to its subscriptions. */
export interface SubscriptionOwner extends HubMember {
  readonly principal: Principal;
  readonly logger: Logger;
  send(frame: ServerFrame): void;
  /** Queues an already framed WebSocket message (see ws-frame.ts). */
  sendWire(wire: Buffer): void;
  /** Held pushes outgrew the limit: the socket is closed as a slow consumer. */
  overflow(): void;
}

type SlotState = 'joining' | 'live' | 'holding';

type HeldPush = { frame: Buffer; offset: number | undefined };

/** What a subscribe asks for beyond the channel. */
export interface SubscribeOptions {
  since?: StreamPosition;
  lastNotificationId?: string;
}

class Slot {
  state: SlotState = 'joining';
  held: HeldPush[] = [];
  heldBytes = 0;
  /** A re-check is queued and has not started reading yet: later changes ride on it. */
  recheckQueued = false;
  /** Reported to presence as joined: must be reported as left. */
  present = false;
  readonly record: GrantRecord;

  constructor(holder: GrantHolder, channel: string) {
    this.record = new GrantRecord(holder, channel);
  }
}

/** Retries of a re-check whose database read failed, before giving up with 'unavailable' (ms). */
const RECHECK_RETRY_DELAYS_MS = [250, 750, 2_000];
/** Retry hint sent with an `internal_error` on subscribe (ms). */
const SUBSCRIBE_RETRY_AFTER_MS = 1_000;

export class Subscriptions implements GrantHolder {
  readonly #owner: SubscriptionOwner;
  readonly #deps: SubscriptionsDeps;
  readonly #slots = new Map<string, Slot>();
  readonly #chains = new Map<string, Promise<void>>();

  constructor(owner: SubscriptionOwner, deps: SubscriptionsDeps) {
    this.#owner = owner;
    this.#deps = deps;
  }

  get size(): number {
    return this.#slots.size;
  }

  /** Hub delivery: live channels go to the socket, joining or holding ones wait. */
  deliver(channel: string, frame: Buffer, offset?: number): void {
    const slot = this.#slots.get(channel);
    if (!slot || slot.state === 'live') {
      this.#owner.sendWire(frame);
      return;
    }
    slot.held.push({ frame, offset });
    slot.heldBytes += frame.length;
    if (slot.heldBytes > this.#deps.limits.maxBufferedBytes) this.#owner.overflow();
  }

  subscribe(channel: string, id: RequestId | undefined, options: SubscribeOptions = {}): Promise<void> {
    return this.#serialize(channel, () => this.#subscribe(channel, id, options));
  }

  /** This node lost continuity on `channel`: the client must subscribe again with `since`. */
  resubscribe(channel: string): void {
    if (!this.#slots.has(channel) || this.#owner.closed) return;
    this.#drop(channel);
    this.#owner.send({ type: 'unsubscribed', channel, reason: 'resubscribe', message: 'subscribe again with since to recover' });
  }

  unsubscribe(channel: string, id: RequestId | undefined): Promise<void> {
    return this.#serialize(channel, async () => {
      if (this.#owner.closed) return;
      if (!this.#slots.has(channel)) {
        this.#replyError(id, 'not_subscribed', 'this connection is not subscribed to that channel', channel);
        return;
      }
      this.#drop(channel);
      this.#owner.send({ type: 'unsubscribed', channel, ...withId(id) });
    });
  }

  /**
   * GrantHolder: something `channel` depends on changed, or its grant lapsed. Pushes are held
   * from this instant; the policy decides again, then they flow or the member is told
   * `unsubscribed`.
   */
  recheck(channel: string, cause: string, changedAt?: number): void {
    const slot = this.#slots.get(channel);
    if (!slot || this.#owner.closed) return;
    if (slot.state === 'live') slot.state = 'holding';
    if (slot.recheckQueued) return;
    slot.recheckQueued = true;
    void this.#serialize(channel, () => this.#recheck(channel, slot, cause, changedAt));
  }

  /** The connection closed: forget every grant (the hub membership is left by the connection). */
  clear(): void {
    for (const [channel, slot] of this.#slots) {
      this.#deps.reauthorizer.grants.remove(slot.record);
      if (slot.present) this.#deps.presence?.left(channel, this.#owner.principal.userId);
    }
    this.#slots.clear();
  }

  async #subscribe(channel: string, id: RequestId | undefined, { since, lastNotificationId }: SubscribeOptions): Promise<void> {
    const owner = this.#owner;
    const { hub, broker, continuity, channelContext, metrics, reauthorizer, limits, subscribeBudget } = this.#deps;
    if (owner.closed) return;
    const existing = this.#slots.get(channel);
    if (existing) {
      // Already live: answer with the position it has been delivering from.
      const { position } = await broker.history(channel, null, 0);
      if (this.#slots.get(channel) === existing && !owner.closed) owner.send({ type: 'subscribed', channel, ...withId(id), ...position });
      return;
    }
    if (this.#slots.size + this.#pendingSubscribes() >= limits.maxSubscriptions) {
      this.#replyError(id, 'too_many_subscriptions', `at most ${limits.maxSubscriptions} channels per connection`, channel);
      return;
    }
    // Each subscribe may cost database reads (the unread snapshot two): budgeted per user, so
    // twenty sockets looping subscribe/unsubscribe cannot turn into thousands of queries.
    if (!subscribeBudget.take(owner.principal.userId)) {
      const retryAfterMs = subscribeBudget.retryAfterMs(owner.principal.userId);
      this.#replyError(id, 'rate_limited', 'too many subscribes; retry later', channel, retryAfterMs);
      return;
    }
    const seq = reauthorizer.seq;
    const stopTimer = metrics.subscribeDuration.startTimer();
    try {
      const decision = await authorizeSubscription(owner.principal, channel, channelContext);
      if (!decision.ok) {
        this.#replyError(id, decision.code, decision.message, channel);
        owner.logger.info('subscribe refused', { channel, code: decision.code });
        return;
      }
      if (owner.closed) return;
      const slot = new Slot(this, channel);
      this.#slots.set(channel, slot);
      try {
        const joined = await hub.join(owner, channel, decision.channel.kind);
        if (!joined || this.#slots.get(channel) !== slot) {
          this.#slots.delete(channel);
          return;
        }
      } catch (error) {
        this.#slots.delete(channel);
        throw error;
      }
      this.#grant(slot, decision.grant);
      this.#deps.presence?.joined(channel, owner.principal.userId);
      slot.present = true;
      // A change committed while we were reading is re-checked before anything is released.
      const missed = reauthorizer.changedSince(seq, slot.record.keys);
      if (missed) this.recheck(channel, missed.cause, missed.at);

      // Joined (pushes are held from here), so the position read now is where live delivery
      // continues: nothing falls between the replay and the first live push.
      let initial;
      let slice;
      let recovered: boolean | undefined;
      let state;
      try {
        slice = await broker.history(channel, since ? since.offset : null, MAX_RECOVERY_EVENTS);
        continuity.observe(channel, slice.position);
        recovered = since ? coversSince(slice, since) : undefined;
        const { policy } = decision;
        const target = decision.channel.id;
        if (recovered) initial = null;
        else if (since && lastNotificationId && policy.recoveryPush) initial = await policy.recoveryPush(owner.principal, target, channelContext, lastNotificationId);
        else initial = await policy.initialPush?.(owner.principal, target, channelContext);
        state = await policy.statePush?.(owner.principal, target, channelContext);
      } catch (error) {
        owner.logger.warn('subscribe could not read the channel’s state; undone', { channel, error: (error as Error).message });
        if (this.#slots.get(channel) === slot) this.#drop(channel);
        this.#replyError(id, 'internal_error', 'could not read the channel’s current state; retry', channel, SUBSCRIBE_RETRY_AFTER_MS);
        return;
      }
      if (owner.closed || this.#slots.get(channel) !== slot) return;
      const position = slice.position;
      owner.send({ type: 'subscribed', channel, ...withId(id), ...position, ...(recovered === undefined ? {} : { recovered }) });
      if (since) metrics.subscribeRecoveries.inc({ outcome: recovered ? 'recovered' : 'reload' });
      if (initial) {
        // The snapshot is state at `position`: its id is stable for that position, and a client
        // ignores it when it already applied a later event.
        owner.send({ ...initial, channel, id: `snapshot:${position.epoch}:${position.offset}`, ts: Date.now(), ...position } as ServerFrame);
      }
      if (recovered) {
        for (const event of slice.events) {
          const parsed = parsePush(channel, event.payload);
          if (parsed.ok) owner.sendWire(parsed.push.wire);
        }
        // Held live pushes up to the position were just replayed.
        slot.held = slot.held.filter((held) => held.offset === undefined || held.offset > position.offset);
      }
      // Presence is not in history: its current state after every subscribe, as a live push.
      if (state) owner.send({ ...state, channel, id: randomUUID(), ts: Date.now() } as ServerFrame);
      this.#release(slot);
      owner.logger.debug('subscribed', { channel, recovered });
    } finally {
      stopTimer();
    }
  }

  async #recheck(channel: string, slot: Slot, cause: string, changedAt: number | undefined): Promise<void> {
    slot.recheckQueued = false;
    const owner = this.#owner;
    const { metrics } = this.#deps;
    if (owner.closed || this.#slots.get(channel) !== slot) return;
    let decision: Awaited<ReturnType<typeof authorizeSubscription>> | 'unavailable' = 'unavailable';
    for (let attempt = 0; attempt <= RECHECK_RETRY_DELAYS_MS.length; attempt++) {
      try {
        decision = await authorizeSubscription(owner.principal, channel, this.#deps.channelContext);
        break;
      } catch (error) {
        owner.logger.warn('re-check failed', { channel, attempt, error: (error as Error).message });
        const delay = RECHECK_RETRY_DELAYS_MS[attempt];
        if (delay === undefined) break;
        await new Promise((resolve) => setTimeout(resolve, delay));
        if (owner.closed || this.#slots.get(channel) !== slot) return;
      }
    }
    if (owner.closed || this.#slots.get(channel) !== slot) return;
    if (decision !== 'unavailable' && decision.ok) {
      this.#grant(slot, decision.grant);
      metrics.rechecks.inc({ outcome: 'kept' });
      this.#release(slot);
      return;
    }
    const reason: UnsubscribeReason = decision === 'unavailable' ? 'unavailable' : 'forbidden';
    const message = decision === 'unavailable' ? 'access could not be re-checked; subscribe again later' : decision.message;
    this.#drop(channel);
    owner.send({ type: 'unsubscribed', channel, reason, message });
    metrics.rechecks.inc({ outcome: reason === 'forbidden' ? 'revoked' : 'unavailable' });
    if (changedAt !== undefined) metrics.revocationLatency.observe(Math.max(0, Date.now() - changedAt) / 1000);
    owner.logger.info('subscription revoked', { channel, cause, reason });
  }

  #grant(slot: Slot, grant: Grant): void {
    this.#deps.reauthorizer.grants.set(slot.record, grant.dependsOn, grant.validUntil);
  }

  /** Joining or holding → live, handing over the held pushes in order; unless a re-check waits. */
  #release(slot: Slot): void {
    if (slot.recheckQueued) {
      slot.state = 'holding';
      return;
    }
    slot.state = 'live';
    const held = slot.held;
    slot.held = [];
    slot.heldBytes = 0;
    for (const { frame } of held) this.#owner.sendWire(frame);
  }

  /** Leaves the channel: hub membership, grant and held pushes. */
  #drop(channel: string): void {
    const slot = this.#slots.get(channel);
    if (!slot) return;
    this.#slots.delete(channel);
    this.#deps.reauthorizer.grants.remove(slot.record);
    if (slot.present) this.#deps.presence?.left(channel, this.#owner.principal.userId);
    this.#deps.hub.leave(this.#owner, channel);
  }

  #pendingSubscribes(): number {
    let pending = 0;
    for (const channel of this.#chains.keys()) if (!this.#slots.has(channel)) pending++;
    // The subscribe being decided is itself in #chains.
    return Math.max(0, pending - 1);
  }

  /** Runs `op` after every earlier command on `channel`; a failure does not break the chain. */
  #serialize(channel: string, op: () => Promise<void>): Promise<void> {
    const previous = this.#chains.get(channel) ?? Promise.resolve();
    const next = previous.then(op);
    const settled = next.catch(() => {});
    this.#chains.set(channel, settled);
    void settled.then(() => {
      if (this.#chains.get(channel) === settled) this.#chains.delete(channel);
    });
    return next;
  }

  #replyError(id: RequestId | undefined, code: ErrorCode, message: string, channel?: string, retryAfterMs?: number): void {
    this.#deps.metrics.replyError(code);
    this.#owner.send({
      type: 'error',
      ...withId(id),
      code,
      message,
      ...(channel === undefined ? {} : { channel }),
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    });
  }
}

export function withId(id: RequestId | undefined): { id?: RequestId } {
  return id === undefined ? {} : { id };
}
