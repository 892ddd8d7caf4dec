'use client';
/**
 * Owns the tab's single RealtimeClient (one socket for every subscription on the page) and
 * hands it to the hooks through context. Mounted once, in the root layout, for signed-in users.
 */
import { createContext, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { RealtimeClient } from './realtime/client.ts';
import { createEndpointSource } from './realtime/endpoint.ts';

export interface RealtimeConfig {
  userId: string;
  /** Notifications HTTP poll interval while the socket is not open (ms). */
  pollMs: number;
}

interface RealtimeContextValue extends RealtimeConfig {
  client: RealtimeClient;
}

const RealtimeContext = createContext<RealtimeContextValue | null>(null);

function createTabClient(): RealtimeClient {
  const endpoints = createEndpointSource();
  return new RealtimeClient({
    endpoint: ({ fresh }) => endpoints.get({ fresh }),
    createSocket: (url, protocols) => new WebSocket(url, protocols),
    location: window.location,
    onLog: (message, fields) => {
      if (process.env.NODE_ENV !== 'production') console.debug(`[realtime] ${message}`, fields ?? '');
    },
  });
}

export function RealtimeProvider({ userId, pollMs, children }: RealtimeConfig & { children: ReactNode }) {
  // Created on the client only (the server render has no window); null until then.
  const [client, setClient] = useState<RealtimeClient | null>(null);

  useEffect(() => {
    const tabClient = createTabClient();
    setClient(tabClient);
    tabClient.start();
    // Back online or back to a visible tab: try at once instead of waiting out a backoff delay
    // or the next probe after giving up. An attempt already in flight is left to finish, and an
    // open socket is untouched (retryNow only cuts waits short).
    const retry = () => tabClient.retryNow();
    const onVisible = () => {
      if (document.visibilityState === 'visible') retry();
    };
    window.addEventListener('online', retry);
    document.addEventListener('visibilitychange', onVisible);
    return () => {
      window.removeEventListener('online', retry);
      document.removeEventListener('visibilitychange', onVisible);
      tabClient.stop();
    };
    // A new user (sign-in as someone else) gets a new socket.
  }, [userId]);

  const value = useMemo(() => (client ? { client, userId, pollMs } : null), [client, userId, pollMs]);
  return <RealtimeContext.Provider value={value}>{children}</RealtimeContext.Provider>;
}

/** The context, or null outside a provider and during the server render. */
export function useRealtimeContext(): RealtimeContextValue | null {
  return useContext(RealtimeContext);
}
