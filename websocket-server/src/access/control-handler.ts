/**
 * Broker messages on the reserved control channel (protocol/control.ts): parsed once per node,
 * then handed to the session registry (sign-outs, deleted accounts) or the re-authorizer
 * (entitlement changes). A malformed message is dropped with a log line, never thrown.
 */
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { parseControlMessage, type ControlMessage } from '../protocol/index.ts';
import type { Reauthorizer } from './reauthorizer.ts';
import type { SessionRegistry } from './sessions.ts';

/** A cache of access facts that control messages make stale (data/cached-directory.ts). */
export interface AccessCache {
  invalidate(message: ControlMessage): void;
  clear(): void;
}

export class ControlHandler {
  readonly #cache: AccessCache | undefined;
  readonly #sessions: SessionRegistry;
  readonly #reauthorizer: Reauthorizer;
  readonly #metrics: Metrics;
  readonly #logger: Logger;

  constructor(sessions: SessionRegistry, reauthorizer: Reauthorizer, metrics: Metrics, logger: Logger, cache?: AccessCache) {
    this.#cache = cache;
    this.#sessions = sessions;
    this.#reauthorizer = reauthorizer;
    this.#metrics = metrics;
    this.#logger = logger.child({ component: 'control' });
  }

  /** Broker callback for the control channel. */
  handle(payload: string): void {
    const parsed = parseControlMessage(payload);
    if (!parsed.ok) {
      this.#metrics.controlMessages.inc({ type: 'invalid' });
      this.#logger.warn('dropped malformed control message', { reason: parsed.reason });
      return;
    }
    this.apply(parsed.message);
  }

  apply(message: ControlMessage): void {
    this.#metrics.controlMessages.inc({ type: message.type });
    // First: the re-checks below must read the database, not what it said before the change.
    this.#cache?.invalidate(message);
    if (message.type === 'entitlement_changed') {
      const affected = this.#reauthorizer.apply(message);
      this.#logger.debug('entitlement changed', { cause: message.cause, subjects: message.subjects.length, affected });
      return;
    }
    const ended = this.#sessions.apply(message);
    this.#logger.info('session control', { type: message.type, userId: message.userId, ended });
  }
}
