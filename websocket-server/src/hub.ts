/**
 * Who holds which channel on this node: channel → members and member → channels, so that a
 * closing connection leaves every channel in one call (socket.io's `rooms`/`sids`). The hub also
 * drives the broker: the first local member of a channel subscribes it, the last one to leave
 * unsubscribes it, so a node receives only the channels its clients hold.
 */
import type { Broker } from './broker/broker.ts';
import type { Logger } from './logger.ts';
import type { ChannelKind } from './protocol/index.ts';

export interface HubMember {
  readonly id: string;
  readonly closed: boolean;
  /**
   * Queues an already framed push of `channel` (complete WebSocket frame bytes); the same Buffer
   * is shared by every member.
   * `offset` is the event's position in the channel's history, when it has one.
   */
  enqueue(frame: Buffer, channel: string, offset?: number): void;
}

export interface HubListener {
  joined(kind: ChannelKind): void;
  left(kind: ChannelKind): void;
  /** The channel's last local member left. */
  emptied?(channel: string): void;
}

/** Longest a subscribe waits for the broker (Redis SUBSCRIBE round trip, or Redis down). */
const BROKER_SUBSCRIBE_TIMEOUT_MS = 5_000;

export class Hub {
  readonly #members = new Map<string, Set<HubMember>>();
  readonly #channelsOf = new Map<HubMember, Map<string, ChannelKind>>();
  /** One in-flight or settled broker subscription per channel, shared by concurrent joins. */
  readonly #brokerSubscriptions = new Map<string, Promise<void>>();
  /**
   * Joins waiting for their broker subscription, per channel. While any waits, the broker
   * subscription is kept even if no member holds the channel yet: otherwise the first of two
   * joiners closing would unsubscribe the broker under the second.
   */
  readonly #waiting = new Map<string, number>();
  readonly #broker: Broker;
  readonly #logger: Logger;
  readonly #listener: HubListener;

  constructor(broker: Broker, logger: Logger, listener: HubListener) {
    this.#broker = broker;
    this.#logger = logger;
    this.#listener = listener;
  }

  get channelCount(): number {
    return this.#members.size;
  }

  get subscriptionCount(): number {
    let total = 0;
    for (const members of this.#members.values()) total += members.size;
    return total;
  }

  has(channel: string): boolean {
    return this.#members.has(channel);
  }

  isMember(member: HubMember, channel: string): boolean {
    return this.#channelsOf.get(member)?.has(channel) ?? false;
  }

  channelsOf(member: HubMember): number {
    return this.#channelsOf.get(member)?.size ?? 0;
  }

  /**
   * Adds `member` once the broker delivers `channel` to this node. Returns false when the member
   * closed while the broker was subscribing. Rejects when the broker could not subscribe.
   */
  async join(member: HubMember, channel: string, kind: ChannelKind): Promise<boolean> {
    this.#waiting.set(channel, (this.#waiting.get(channel) ?? 0) + 1);
    try {
      await this.#ensureBrokerSubscription(channel);
    } finally {
      const left = (this.#waiting.get(channel) ?? 1) - 1;
      if (left > 0) this.#waiting.set(channel, left);
      else this.#waiting.delete(channel);
    }
    if (member.closed) {
      this.#releaseIfUnused(channel);
      return false;
    }
    let members = this.#members.get(channel);
    if (!members) this.#members.set(channel, (members = new Set()));
    if (members.has(member)) return true;
    members.add(member);
    let channels = this.#channelsOf.get(member);
    if (!channels) this.#channelsOf.set(member, (channels = new Map()));
    channels.set(channel, kind);
    this.#listener.joined(kind);
    return true;
  }

  /** Returns false when the member did not hold the channel. */
  leave(member: HubMember, channel: string): boolean {
    const channels = this.#channelsOf.get(member);
    const kind = channels?.get(channel);
    if (!channels || kind === undefined) return false;
    channels.delete(channel);
    if (channels.size === 0) this.#channelsOf.delete(member);
    const members = this.#members.get(channel);
    members?.delete(member);
    this.#listener.left(kind);
    if (members?.size === 0) {
      this.#members.delete(channel);
      this.#listener.emptied?.(channel);
      this.#releaseIfUnused(channel);
    }
    return true;
  }

  leaveAll(member: HubMember): void {
    const channels = this.#channelsOf.get(member);
    if (!channels) return;
    for (const channel of [...channels.keys()]) this.leave(member, channel);
  }

  /** Queues `frame` on every member of `channel`; returns how many. */
  deliver(channel: string, frame: Buffer, offset?: number): number {
    const members = this.#members.get(channel);
    if (!members) return 0;
    for (const member of members) member.enqueue(frame, channel, offset);
    return members.size;
  }

  /** Members of `channel` on this node (a copy). */
  membersOf(channel: string): HubMember[] {
    return [...(this.#members.get(channel) ?? [])];
  }

  /** Channels with at least one member on this node. */
  channels(): string[] {
    return [...this.#members.keys()];
  }

  #ensureBrokerSubscription(channel: string): Promise<void> {
    let pending = this.#brokerSubscriptions.get(channel);
    if (!pending) {
      pending = withTimeout(this.#broker.subscribe(channel), BROKER_SUBSCRIBE_TIMEOUT_MS, 'broker subscribe timed out');
      this.#brokerSubscriptions.set(channel, pending);
      pending.catch(() => {
        // A failed subscription must not stay cached: the next join tries again.
        if (this.#brokerSubscriptions.get(channel) === pending) this.#brokerSubscriptions.delete(channel);
      });
    }
    return pending;
  }

  #releaseIfUnused(channel: string): void {
    if (this.#members.has(channel) || this.#waiting.has(channel) || !this.#brokerSubscriptions.has(channel)) return;
    this.#brokerSubscriptions.delete(channel);
    this.#broker.unsubscribe(channel).catch((error: Error) => {
      this.#logger.warn('broker unsubscribe failed', { channel, error: error.message });
    });
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
