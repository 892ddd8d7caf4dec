/**
 * Publishes through the WebSocket server's `POST /publish` (bearer WS_PUBLISH_SECRET), which
 * answers 202 once its broker took the event.
 */
import { PUBLISH_TIMEOUT_MS, type Transport } from './transport.ts';

export function httpTransport(baseUrl: string, secret: string | undefined): Transport {
  const endpoint = new URL('/publish', baseUrl).toString();
  return {
    kind: 'http',
    async send(channels, payload) {
      if (!secret) throw new Error('WS_PUBLISH_SECRET is not set: cannot publish without REDIS_URL');
      const response = await fetch(endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` },
        body: JSON.stringify({ channels, ...payload }),
        signal: AbortSignal.timeout(PUBLISH_TIMEOUT_MS),
      });
      if (response.status !== 202) {
        const text = await response.text().catch(() => '');
        throw new Error(`POST /publish answered ${response.status}: ${text.slice(0, 200)}`);
      }
    },
  };
}
