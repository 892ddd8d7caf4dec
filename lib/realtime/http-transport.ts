/**
 * Publishes through the WebSocket server's `POST /publish`, and control messages through its
 * `POST /control` (both bearer WS_PUBLISH_SECRET), which answer 202 once the broker took them.
 */
import { PUBLISH_TIMEOUT_MS, type Transport } from './transport.ts';

export function httpTransport(baseUrl: string, secret: string | undefined): Transport {
  const publishEndpoint = new URL('/publish', baseUrl).toString();
  const controlEndpoint = new URL('/control', baseUrl).toString();

  async function post(endpoint: string, body: unknown): Promise<void> {
    if (!secret) throw new Error('WS_PUBLISH_SECRET is not set: cannot publish without REDIS_URL');
    const response = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(PUBLISH_TIMEOUT_MS),
    });
    if (response.status !== 202) {
      const text = await response.text().catch(() => '');
      throw new Error(`POST ${new URL(endpoint).pathname} answered ${response.status}: ${text.slice(0, 200)}`);
    }
  }

  return {
    kind: 'http',
    send: (channels, payload) => post(publishEndpoint, { channels, ...payload }),
    sendControl: (message) => post(controlEndpoint, message),
  };
}
