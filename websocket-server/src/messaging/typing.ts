/**
 * Typing indicators: a client's `{"type":"typing","conversationId":…,"typing":true|false}` is
 * forwarded, as a `typing` event, to the OTHER participant's `messages_{userId}` channel, and
 * nowhere else. One relay per connection:
 *
 * - budget first, before any read: at most TYPING_PER_SECOND frames a second per conversation
 *   (a burst of TYPING_BURST), beyond that `rate_limited` with `retryAfterMs`. The connection's
 *   own frame rate (CLIENT_FRAMES_PER_SECOND) bounds the total across conversations;
 * - then the sender must be one of the conversation's two participants (a Directory lookup,
 *   cached for good: participants never change), else `forbidden`. An unknown conversation is
 *   answered the same way, so the reply tells nothing about conversations of others;
 * - then a transient broker publish: no offset, no history, so a typing indicator is never
 *   replayed to anyone who subscribes later (it would be stale by then).
 *
 * A forwarded frame gets no reply (typing is fire and forget); a failed publish rejects and the
 * connection answers `internal_error`.
 */
import type { Broker } from '../broker/broker.ts';
import type { Directory } from '../data/directory.ts';
import { KeyedBuckets } from '../limits/keyed-buckets.ts';
import type { Metrics } from '../metrics.ts';
import { channelName, type EventData, type RequestId, type ServerFrame } from '../protocol/index.ts';

/** Typing frames per second per connection per conversation, and the burst allowed at once. */
export const TYPING_PER_SECOND = 2;
export const TYPING_BURST = 2;
/** Conversations whose budget one connection tracks at once (a full bucket is forgotten first). */
const MAX_TRACKED_CONVERSATIONS = 1_000;

export interface TypingFrame {
  conversationId: string;
  typing: boolean;
  id?: RequestId | undefined;
}

/** What the relay needs of its connection. */
export interface TypingSender {
  readonly principal: { readonly userId: string };
  readonly closed: boolean;
  send(frame: ServerFrame): void;
}

export interface TypingDeps {
  directory: Directory;
  broker: Broker;
  metrics: Pick<Metrics, 'replyError'>;
}

export class TypingRelay {
  readonly #sender: TypingSender;
  readonly #deps: TypingDeps;
  readonly #budget = new KeyedBuckets(TYPING_PER_SECOND, TYPING_BURST, MAX_TRACKED_CONVERSATIONS);

  constructor(sender: TypingSender, deps: TypingDeps) {
    this.#sender = sender;
    this.#deps = deps;
  }

  async handle({ conversationId, typing, id }: TypingFrame): Promise<void> {
    const sender = this.#sender;
    const userId = sender.principal.userId;
    if (!this.#budget.take(conversationId)) {
      this.#refuse(id, 'rate_limited', `at most ${TYPING_PER_SECOND} typing frames a second per conversation`, this.#budget.retryAfterMs(conversationId));
      return;
    }
    const participants = await this.#deps.directory.conversationParticipants(conversationId);
    if (sender.closed) return;
    if (!participants || !participants.includes(userId)) {
      this.#refuse(id, 'forbidden', 'you take no part in that conversation');
      return;
    }
    const other = participants[0] === userId ? participants[1] : participants[0];
    const data: EventData<'typing'> = { conversationId, userId, typing };
    await this.#deps.broker.publish(channelName.messages(other), JSON.stringify({ type: 'typing', data }), { transient: true });
  }

  #refuse(id: RequestId | undefined, code: 'forbidden' | 'rate_limited', message: string, retryAfterMs?: number): void {
    this.#deps.metrics.replyError(code);
    this.#sender.send({
      type: 'error',
      ...(id === undefined ? {} : { id }),
      code,
      message,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    });
  }
}
