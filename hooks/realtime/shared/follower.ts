/**
 * A tab's link to the leader's hub: a WebSocket look-alike for the tab's own RealtimeClient
 * (its `createSocket`), carried over the TabChannel. The tab keeps everything a tab had with a
 * socket of its own: its Subscriptions, their positions, their order and de-duplication rules
 * (subscription.ts), its listeners and request ids; the hub answers as the server would (see
 * leader.ts). So when the leader changes, the tab's client sees a lost socket and reconnects
 * to the new hub, each channel asking with `since` its last applied position, and nothing is
 * shown twice or lost: the hub replays from the oldest position of its tabs and every tab drops
 * what it already applied.
 *
 *   open(): attach ──welcome──▶ open (`connected` handed to the client, then `ready`)
 *     │                           │
 *     └─ no hub yet: waits for    └─ bye, or another hub's hello: closed with 1012
 *        a hello, attaches again     (the client reconnects after a short jitter)
 */
import type { ServerFrame } from '@/websocket-server/src/protocol/index.ts';
import type { WebSocketLike } from '../client.ts';
import type { ConnectionSnapshot } from '../state.ts';
import type { TabChannel, TabMessage } from './tab-channel.ts';

/** Close code a link hands its client when the hub goes: 1012 (service restart) reconnects. */
export const LEADER_CHANGED = 1012;

const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 3;

export interface HubLinkEvents {
  /** The hub's connection state: on welcome and on every change. */
  snapshot(snapshot: ConnectionSnapshot): void;
  /** The hub this tab was attached to is gone (bye, or another took over). */
  lost(): void;
}

type Handler = ((event: { data?: unknown; code?: number; reason?: string }) => void) | null;

/** What the tab's client holds instead of a WebSocket. */
class LinkSocket {
  readyState = CONNECTING;
  onmessage: Handler = null;
  onclose: Handler = null;
  onerror: Handler = null;
  readonly #link: HubLink;

  constructor(link: HubLink) {
    this.#link = link;
  }

  send(data: string): void {
    if (this.readyState !== OPEN) throw new Error('the link is not open');
    this.#link.sendFrame(this, data);
  }

  close(): void {
    if (this.readyState === CLOSED) return;
    this.readyState = CLOSED;
    this.#link.closed(this);
  }

  emit(frame: ServerFrame | Record<string, unknown>): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
}

export class HubLink {
  readonly tabId: string;
  readonly #channel: TabChannel;
  readonly #events: HubLinkEvents;
  #socket: LinkSocket | null = null;
  /** The hub the current socket is attached to (null while it waits for a welcome). */
  #hub: string | null = null;
  #remove: (() => void) | null = null;

  constructor(channel: TabChannel, tabId: string, events: HubLinkEvents) {
    this.#channel = channel;
    this.tabId = tabId;
    this.#events = events;
  }

  start(): void {
    this.#remove ??= this.#channel.listen((message) => this.#onMessage(message));
  }

  stop(): void {
    this.#socket?.close();
    this.#remove?.();
    this.#remove = null;
  }

  /** The tab client's `createSocket`: a new link socket, attaching to whichever hub answers. */
  open = (): WebSocketLike => {
    this.#socket?.close();
    const socket = new LinkSocket(this);
    this.#socket = socket;
    this.#hub = null;
    this.#channel.post({ kind: 'attach', tab: this.tabId });
    return socket as unknown as WebSocketLike;
  };

  /** retryNow() of this tab: the hub's client cuts its wait short. */
  retry(): void {
    if (this.#hub) this.#channel.post({ kind: 'retry', tab: this.tabId, hub: this.#hub });
  }

  sendFrame(socket: LinkSocket, data: string): void {
    if (socket !== this.#socket || !this.#hub) return;
    this.#channel.post({ kind: 'frame', tab: this.tabId, hub: this.#hub, frame: JSON.parse(data) });
  }

  closed(socket: LinkSocket): void {
    if (socket !== this.#socket) return;
    if (this.#hub) this.#channel.post({ kind: 'detach', tab: this.tabId, hub: this.#hub });
    this.#socket = null;
    this.#hub = null;
  }

  #onMessage(message: TabMessage): void {
    const socket = this.#socket;
    switch (message.kind) {
      case 'welcome': {
        if (message.to !== this.tabId || !socket || socket.readyState !== CONNECTING) return;
        this.#hub = message.hub;
        socket.readyState = OPEN;
        this.#events.snapshot(message.snapshot);
        // The client subscribes every channel while it handles `connected`, so its subscribes
        // are all posted before `ready`. No `expiresAt`: the hub's client refreshes the session.
        socket.emit({ type: 'connected', userId: message.userId, connectionId: `tab:${message.hub}` });
        if (this.#socket === socket && this.#hub) this.#channel.post({ kind: 'ready', tab: this.tabId, hub: this.#hub });
        return;
      }
      case 'deliver':
        if (message.to !== this.tabId || !socket || message.hub !== this.#hub) return;
        for (const frame of message.frames) {
          if (this.#socket !== socket) return;
          socket.emit(frame);
        }
        return;
      case 'state':
        if (message.hub === this.#hub) this.#events.snapshot(message.snapshot);
        return;
      case 'hello':
        if (message.hub === this.#hub || !socket) return;
        if (this.#hub) this.#drop('another tab leads now');
        else this.#channel.post({ kind: 'attach', tab: this.tabId });
        return;
      case 'bye':
        if (message.hub === this.#hub) this.#drop('the leading tab went away');
        return;
      default:
        return;
    }
  }

  /** The hub is gone: the client sees its socket close and reconnects (to the next hub). */
  #drop(reason: string): void {
    const socket = this.#socket;
    this.#socket = null;
    this.#hub = null;
    this.#events.lost();
    if (!socket) return;
    socket.readyState = CLOSED;
    socket.onclose?.({ code: LEADER_CHANGED, reason });
  }
}
