/**
 * Publishes through the WebSocket server's `POST /publish`, control messages through its
 * `POST /control` (both bearer WS_PUBLISH_SECRET, 202 once the broker took them), and reads a
 * channel's position with `GET /position?channel=`. The server's broker keeps the history, so an
 * event sent here gets its offset and epoch there.
 */
import { streamPositionSchema } from '@/websocket-server/src/protocol/index.ts';
import { PUBLISH_TIMEOUT_MS, PublishRefusedError, type Transport } from './transport.ts';

export function httpTransport(baseUrl: string, secret: string | undefined): Transport {
  const publishEndpoint = new URL('/publish', baseUrl).toString();
  const controlEndpoint = new URL('/control', baseUrl).toString();

  function authorization(): string {
    if (!secret) throw new Error('WS_PUBLISH_SECRET is not set: cannot publish without REDIS_URL');
    return `Bearer ${secret}`;
  }

  async function post(endpoint: string, body: unknown): Promise<void> {
    const response = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: authorization() },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(PUBLISH_TIMEOUT_MS),
    });
    if (response.status !== 202) {
      const text = await response.text().catch(() => '');
      const message = `POST ${new URL(endpoint).pathname} answered ${response.status}: ${text.slice(0, 200)}`;
      // 400: the server's protocol module refuses the body; 413: too large. Neither changes on a
      // retry. 401 (a wrong secret) and 503 (broker down) do once the operator or Redis is back.
      throw response.status === 400 || response.status === 413 ? new PublishRefusedError(message) : new Error(message);
    }
  }

  return {
    kind: 'http',
    send: (channels, { type, data, id }) => post(publishEndpoint, { channels, type, data, id }),
    sendControl: (message) => post(controlEndpoint, message),
    async position(channel) {
      const url = new URL('/position', baseUrl);
      url.searchParams.set('channel', channel);
      const response = await fetch(url, { headers: { authorization: authorization() }, signal: AbortSignal.timeout(PUBLISH_TIMEOUT_MS) });
      const body = (await response.json().catch(() => null)) as unknown;
      if (response.status !== 200) throw new Error(`GET /position answered ${response.status}: ${JSON.stringify(body).slice(0, 200)}`);
      return streamPositionSchema.parse(body);
    },
    // fetch keeps no connection that outlives the process's work.
    close: async () => {},
  };
}
