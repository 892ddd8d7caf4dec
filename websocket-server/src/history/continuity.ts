/**
 * Keeps this node's delivery of each channel continuous. Redis pub/sub is at most once: while
 * the node's subscriber connection is down, events are published (and kept in history) but never
 * reach this node. So the node remembers, per channel, the last offset it delivered; a live event
 * that skips ahead, or a broker reconnect, makes it read the missing events from history and
 * deliver them first, in order. When the history no longer holds them, the channel's members are
 * told to subscribe again (`unsubscribed`, reason `resubscribe`): their own `since` then gets
 * `recovered: false` and they reload their state.
 *
 * A new epoch (the history was reset) is replayed from its start only when this node's
 * subscriber stayed connected since the channel's last delivery: then nothing of the old epoch
 * can have been missed (the keys expired on a quiet channel). After a broker reconnect the old
 * epoch's tail may never have reached this node (its link was down while Redis still took
 * events, then Redis restarted without persistence), and nobody can tell: members resubscribe.
 */
import type { Broker } from '../broker/broker.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { MAX_RECOVERY_EVENTS, type StreamPosition } from '../protocol/index.ts';
import { parsePush, type ParsedPush } from './push-frames.ts';

/** `generation`: the broker connection (counted by reconnects) this track's position is continuous on. */
type Track = { position: StreamPosition; filling: boolean; queue: ParsedPush[]; generation: number };

export interface ContinuityTarget {
  /** Hands a push to the channel's members. */
  deliver(channel: string, push: ParsedPush): void;
  /** The node cannot make the channel continuous: its members must resubscribe. */
  lost(channel: string): void;
  /** Channels that still have members here. */
  channels(): string[];
}

export class Continuity {
  readonly #tracks = new Map<string, Track>();
  readonly #broker: Broker;
  readonly #target: ContinuityTarget;
  readonly #logger: Logger;
  readonly #metrics: Metrics;
  /** Bumped on every broker reconnect. */
  #generation = 0;
  /** Pushes that already triggered a history read (see accept). */
  readonly #triedFill = new WeakSet<ParsedPush>();

  constructor(broker: Broker, target: ContinuityTarget, metrics: Metrics, logger: Logger) {
    this.#broker = broker;
    this.#target = target;
    this.#metrics = metrics;
    this.#logger = logger.child({ component: 'continuity' });
  }

  /** A subscriber read the channel's position: track from there if this node was not yet. */
  observe(channel: string, position: StreamPosition): void {
    if (!this.#tracks.has(channel)) this.#tracks.set(channel, { position: { ...position }, filling: false, queue: [], generation: this.#generation });
  }

  /** The channel's last member on this node left. */
  forget(channel: string): void {
    this.#tracks.delete(channel);
  }

  /** A live event that carries a position. */
  accept(channel: string, push: ParsedPush): void {
    const { offset, epoch } = push.event;
    if (offset === undefined || epoch === undefined) {
      this.#target.deliver(channel, push);
      return;
    }
    const track = this.#tracks.get(channel);
    if (!track) {
      this.#tracks.set(channel, { position: { offset, epoch }, filling: false, queue: [], generation: this.#generation });
      this.#target.deliver(channel, push);
      return;
    }
    if (track.filling) {
      track.queue.push(push);
      return;
    }
    if (epoch === track.position.epoch && offset <= track.position.offset) return; // already delivered
    if (epoch === track.position.epoch && offset === track.position.offset + 1) {
      track.position.offset = offset;
      // The next event, on the current connection: nothing before it is missing.
      track.generation = this.#generation;
      this.#target.deliver(channel, push);
      return;
    }
    // A gap, or a new epoch that does not start at 1: read what is missing first. A push that
    // already made us read history and still does not follow is ahead of anything history knows
    // (a plain PUBLISH that carries a made-up offset): drop it instead of reading again forever.
    if (this.#triedFill.has(push)) {
      this.#metrics.eventsReceived.inc({ outcome: 'invalid' });
      this.#logger.warn('dropped an event whose offset is ahead of the channel’s history', { channel, offset, epoch });
      return;
    }
    this.#triedFill.add(push);
    track.queue.push(push);
    void this.#fill(channel, track, 'gap');
  }

  /** After a broker reconnect: every channel with members is brought up to date. */
  async recoverAll(): Promise<void> {
    // Every position from before this instant may be missing events: none is continuous now.
    this.#generation++;
    const channels = this.#target.channels();
    this.#logger.info('recovering channels after a broker reconnect', { channels: channels.length });
    await Promise.all(
      channels.map((channel) => {
        const track = this.#tracks.get(channel);
        return track && !track.filling ? this.#fill(channel, track, 'reconnect') : undefined;
      }),
    );
  }

  async #fill(channel: string, track: Track, why: 'gap' | 'reconnect'): Promise<void> {
    track.filling = true;
    const generation = this.#generation;
    try {
      let slice = await this.#broker.history(channel, track.position.offset, MAX_RECOVERY_EVENTS);
      let continuous = true;
      if (slice.position.epoch !== track.position.epoch) {
        // History was reset (keys expired, or Redis restarted without persistence). Without a
        // reconnect since the last delivery nothing of the old epoch was missed: the new epoch
        // from its start. After one, the old epoch's tail may be lost (see the header).
        continuous = track.generation === generation;
        if (continuous) {
          track.position = { offset: 0, epoch: slice.position.epoch };
          slice = await this.#broker.history(channel, 0, MAX_RECOVERY_EVENTS);
        }
      }
      const missing = slice.position.offset - track.position.offset;
      const complete = continuous && (missing <= 0 || (slice.events.length === missing && slice.events[0]?.offset === track.position.offset + 1));
      if (!complete && this.#tracks.get(channel) === track) {
        this.#metrics.recoveries.inc({ outcome: 'lost', trigger: why });
        this.#logger.warn('history no longer covers what this node missed; members resubscribe', { channel, from: track.position, now: slice.position });
        track.position = { ...slice.position };
        track.generation = generation;
        this.#target.lost(channel);
      } else {
        let replayed = 0;
        for (const { offset, payload } of slice.events) {
          if (offset <= track.position.offset) continue;
          const parsed = parsePush(channel, payload);
          track.position.offset = offset;
          if (!parsed.ok) continue;
          this.#target.deliver(channel, parsed.push);
          replayed++;
        }
        track.generation = generation;
        if (replayed > 0 || why === 'gap') this.#metrics.recoveries.inc({ outcome: 'recovered', trigger: why });
        if (replayed > 0) this.#logger.info('delivered events this node had missed', { channel, replayed, why });
      }
    } catch (error) {
      this.#metrics.recoveries.inc({ outcome: 'failed', trigger: why });
      this.#logger.warn('history read failed; members resubscribe', { channel, error: (error as Error).message });
      if (this.#tracks.get(channel) === track) this.#target.lost(channel);
      this.#tracks.delete(channel);
    } finally {
      track.filling = false;
      const queued = track.queue;
      track.queue = [];
      if (this.#tracks.get(channel) === track) for (const push of queued) this.accept(channel, push);
    }
  }
}
