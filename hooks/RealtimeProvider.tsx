'use client';
/**
 * Owns the tab's realtime connection and hands it to the hooks through context. Mounted once, in
 * the root layout, for signed-in users. Where the browser has BroadcastChannel and Web Locks,
 * the user's tabs share one socket (a SharedRealtimeClient: one tab leads and holds it, see
 * hooks/realtime/shared/ and ADR 0014); elsewhere each tab has a RealtimeClient of its own.
 */
import { createContext, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { RealtimeClient } from './realtime/client.ts';
import { createEndpointSource } from './realtime/endpoint.ts';
import type { RealtimeConnection } from './realtime/shared/connection.ts';
import { SharedRealtimeClient } from './realtime/shared/shared-client.ts';
import { canShareTabs } from './realtime/shared/tab-channel.ts';

export interface RealtimeConfig {
  userId: string;
  /** Notifications HTTP poll interval while the socket is not open (ms). */
  pollMs: number;
}

interface RealtimeContextValue extends RealtimeConfig {
  client: RealtimeConnection;
}

const RealtimeContext = createContext<RealtimeContextValue | null>(null);

const onLog = (message: string, fields?: Record<string, unknown>) => {
  if (process.env.NODE_ENV !== 'production') console.debug(`[realtime] ${message}`, fields ?? '');
};

function createSocketClient(): RealtimeClient {
  const endpoints = createEndpointSource();
  return new RealtimeClient({
    endpoint: ({ fresh }) => endpoints.get({ fresh }),
    createSocket: (url, protocols) => new WebSocket(url, protocols),
    location: window.location,
    onLog,
  });
}

function createTabClient(userId: string): RealtimeConnection {
  if (!canShareTabs(window)) return createSocketClient();
  return new SharedRealtimeClient({ userId, createUpstream: createSocketClient, location: window.location, onLog });
}

export function RealtimeProvider({ userId, pollMs, children }: RealtimeConfig & { children: ReactNode }) {
  // Created on the client only (the server render has no window); null until then.
  const [client, setClient] = useState<RealtimeConnection | null>(null);

  useEffect(() => {
    const tabClient = createTabClient(userId);
    setClient(tabClient);
    tabClient.start();
    // Back online or back to a visible tab: try at once instead of waiting out a backoff delay
    // or the next probe after giving up. An attempt already in flight is left to finish, and an
    // open socket is untouched (retryNow only cuts waits short).
    const retry = () => tabClient.retryNow();
    const onVisible = () => {
      if (document.visibilityState === 'visible') retry();
    };
    // Leaving the page: a leading tab hands the shared socket over at once (its lock goes with
    // the page anyway); back from the back/forward cache, it takes part again.
    const onPageHide = () => tabClient.stop();
    const onPageShow = (event: PageTransitionEvent) => {
      if (event.persisted) tabClient.start();
    };
    window.addEventListener('online', retry);
    document.addEventListener('visibilitychange', onVisible);
    window.addEventListener('pagehide', onPageHide);
    window.addEventListener('pageshow', onPageShow);
    return () => {
      window.removeEventListener('online', retry);
      document.removeEventListener('visibilitychange', onVisible);
      window.removeEventListener('pagehide', onPageHide);
      window.removeEventListener('pageshow', onPageShow);
      tabClient.stop();
    };
    // A new user (sign-in as someone else) gets a new socket, shared under that user's name.
  }, [userId]);

  const value = useMemo(() => (client ? { client, userId, pollMs } : null), [client, userId, pollMs]);
  return <RealtimeContext.Provider value={value}>{children}</RealtimeContext.Provider>;
}

/** The context, or null outside a provider and during the server render. */
export function useRealtimeContext(): RealtimeContextValue | null {
  return useContext(RealtimeContext);
}
