/**
 * The wire between the tabs of one browser profile that share one socket (see leader.ts and
 * follower.ts, ADR 0014). One BroadcastChannel per signed-in user, `fonana-realtime:<userId>`,
 * so a tab of another user (signed in meanwhile, in another tab) listens on another channel and
 * never hears this user's frames. The Web Locks of the same name elect the leader.
 *
 * BroadcastChannel does not deliver a message to the object that posted it; the leader's own
 * tab talks to its hub through the same object, so `post` also hands the message to this
 * object's own listeners (in a microtask, keeping the order of posts).
 */
import type { ClientFrame, ServerFrame } from '@/websocket-server/src/protocol/index.ts';
import type { ConnectionSnapshot } from '../state.ts';

/** Messages between the tabs' links and the leader's hub; every hub message names its hub. */
export type TabMessage =
  // tab → hub
  /** A link looks for the hub (its socket was just opened, or a hub said hello). */
  | { kind: 'attach'; tab: string }
  /** Sent right after the tab handled `connected`: its subscribes are all posted before this. */
  | { kind: 'ready'; tab: string; hub: string }
  | { kind: 'frame'; tab: string; hub: string; frame: ClientFrame }
  /** The tab's socket closed (its provider stopped, the page is going away). */
  | { kind: 'detach'; tab: string; hub: string }
  /** retryNow() in a follower: the hub's client cuts its wait short. */
  | { kind: 'retry'; tab: string; hub: string }
  // hub → tabs
  /** A new hub (a tab just became leader): links of other hubs close and attach to it. */
  | { kind: 'hello'; hub: string }
  | { kind: 'welcome'; hub: string; to: string; userId: string; snapshot: ConnectionSnapshot }
  | { kind: 'deliver'; hub: string; to: string; frames: ServerFrame[] }
  /** The hub's connection state changed (every tab shows it). */
  | { kind: 'state'; hub: string; snapshot: ConnectionSnapshot }
  /** The hub stops (its tab closes or signs out): links wait for the next hello. */
  | { kind: 'bye'; hub: string };

const KINDS = new Set<TabMessage['kind']>(['attach', 'ready', 'frame', 'detach', 'retry', 'hello', 'welcome', 'deliver', 'state', 'bye']);

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null;

/**
 * A message from another tab. The channel is same-origin, so this only keeps a malformed post
 * (another script of the origin, an older version of the app in a tab not yet reloaded) from
 * throwing in a handler: the kind is known, ids are strings, frames are objects. The frames
 * themselves are checked where they always were: by the server, and by the tab's client.
 */
export function isTabMessage(value: unknown): value is TabMessage {
  if (!isObject(value) || !KINDS.has(value.kind as TabMessage['kind'])) return false;
  for (const key of ['tab', 'hub', 'to'] as const) {
    if (key in value && typeof value[key] !== 'string') return false;
  }
  switch (value.kind as TabMessage['kind']) {
    case 'frame':
      return isObject(value.frame) && typeof value.frame.type === 'string';
    case 'deliver':
      return Array.isArray(value.frames) && value.frames.every(isObject);
    case 'welcome':
    case 'state':
      return isObject(value.snapshot) && typeof value.snapshot.state === 'string';
    default:
      return true;
  }
}

/** `fonana-realtime:<userId>`: the BroadcastChannel's and the leader lock's name. */
export function sharedName(userId: string): string {
  return `fonana-realtime:${userId}`;
}

/** Whether this browser can share one socket between tabs (BroadcastChannel and Web Locks). */
export function canShareTabs(scope: { BroadcastChannel?: unknown; navigator?: { locks?: { request?: unknown } } } = globalThis): boolean {
  return typeof scope.BroadcastChannel === 'function' && typeof scope.navigator?.locks?.request === 'function';
}

export interface BroadcastChannelLike {
  postMessage(message: unknown): void;
  onmessage: ((event: MessageEvent) => void) | null;
  close(): void;
}

export class TabChannel {
  readonly #channel: BroadcastChannelLike;
  readonly #listeners = new Set<(message: TabMessage) => void>();
  #closed = false;

  readonly #onError: ((error: Error) => void) | undefined;

  constructor(name: string, open: (name: string) => BroadcastChannelLike = (n) => new BroadcastChannel(n), onError?: (error: Error) => void) {
    this.#onError = onError;
    this.#channel = open(name);
    this.#channel.onmessage = (event) => {
      if (isTabMessage(event.data)) this.#dispatch(event.data);
    };
  }

  post(message: TabMessage): void {
    if (this.#closed) return;
    this.#channel.postMessage(message);
    queueMicrotask(() => this.#dispatch(message));
  }

  listen(listener: (message: TabMessage) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#channel.onmessage = null;
    this.#channel.close();
    this.#listeners.clear();
  }

  #dispatch(message: TabMessage): void {
    if (this.#closed) return;
    for (const listener of [...this.#listeners]) {
      try {
        listener(message);
      } catch (error) {
        // One handler's failure must not keep the message from the others (link and hub).
        this.#onError?.(error as Error);
      }
    }
  }
}
