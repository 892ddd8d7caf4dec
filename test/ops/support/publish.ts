/** Publishing a test event the way any backend does: `POST /publish` with the shared secret. */
import { randomUUID } from 'node:crypto';
import { get } from 'node:http';
import { TEST_PUBLISH_SECRET } from '../../support/env.ts';

export async function publishFeedUpdate(httpUrl: string, channel: string, secret = TEST_PUBLISH_SECRET): Promise<string> {
  const postId = `ops-${randomUUID().slice(0, 8)}`;
  const response = await fetch(new URL('/publish', httpUrl), {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: JSON.stringify({ channel, type: 'feed_update', data: { reason: 'post_created', postId } }),
  });
  if (response.status !== 202) throw new Error(`POST /publish answered ${response.status}: ${await response.text()}`);
  return postId;
}

/** GET /health on a fresh TCP connection each time (no keep-alive, so under PM2 cluster mode
 * successive calls reach different processes); `null` when nothing answers. */
export function health(httpUrl: string): Promise<{ status: number; body: Record<string, unknown> } | null> {
  return new Promise((resolve) => {
    const request = get(new URL('/health', httpUrl), { agent: false, timeout: 2_000 }, (response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => (text += chunk.toString()));
      response.on('end', () => {
        try {
          resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> });
        } catch {
          resolve(null);
        }
      });
    });
    request.on('timeout', () => request.destroy());
    request.on('error', () => resolve(null));
  });
}
