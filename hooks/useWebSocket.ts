'use client';
/**
 * The tab's connection: its state machine snapshot and the client itself. `mode` is what
 * components act on: 'websocket' while the socket is open, 'polling' otherwise.
 */
import { useSyncExternalStore } from 'react';
import { useRealtimeContext } from './RealtimeProvider.tsx';
import type { RealtimeConnection } from './realtime/shared/connection.ts';
import { INITIAL_SNAPSHOT, type ConnectionSnapshot } from './realtime/state.ts';

const noop = () => () => {};
const initial = () => INITIAL_SNAPSHOT;

export interface WebSocketStatus extends ConnectionSnapshot {
  mode: 'websocket' | 'polling';
  client: RealtimeConnection | null;
  /** Try to connect now (after giving up, or to skip a backoff delay). */
  retry: () => void;
}

export function useWebSocket(): WebSocketStatus {
  const client = useRealtimeContext()?.client ?? null;
  const snapshot = useSyncExternalStore(client?.subscribeState ?? noop, client?.getSnapshot ?? initial, initial);
  return {
    ...snapshot,
    mode: snapshot.state === 'open' ? 'websocket' : 'polling',
    client,
    retry: () => client?.retryNow(),
  };
}
