/**
 * For the session and entitlement tests: browsers driven over fetch (next-auth's real
 * credentials sign-in and sign-out, each browser with its own cookie jar), users with real
 * bcrypt hashes, and a recorder of the control messages the app publishes on Redis.
 */
import { randomBytes } from 'node:crypto';
import bcrypt from 'bcryptjs';
import { Redis } from 'ioredis';
import { decode, type JWT } from 'next-auth/jwt';
import { CONTROL_CHANNEL, controlMessageSchema, type ControlMessage } from '../../../websocket-server/src/protocol/index.ts';
import type { PrismaClient } from '../../../lib/db/prisma-client.ts';
import { TEST_NEXTAUTH_SECRET } from '../../support/env.ts';

export const SESSION_COOKIE = 'next-auth.session-token';
export const PASSWORD = 'correct horse';

export type Json = Record<string, unknown>;

/** A user who can sign in with PASSWORD (bcrypt cost 4: fast, and bcrypt all the same). */
export async function createUser(prisma: PrismaClient, options: { name?: string; isCreator?: boolean } = {}) {
  const tag = randomBytes(5).toString('hex');
  const name = options.name ?? `user-${tag}`;
  return prisma.user.create({
    data: { email: `${name.toLowerCase()}-${tag}@test.invalid`, name, passwordHash: await bcrypt.hash(PASSWORD, 4), isCreator: options.isCreator ?? false },
  });
}

/** One browser: a cookie jar, fetch against the app with it, and next-auth's sign-in and sign-out. */
export class Browser {
  readonly jar = new Map<string, string>();

  constructor(readonly appUrl: string) {}

  /** A browser holding a copy of a session cookie (a copied or stolen one, or one kept from before a sign-out). */
  static withCookie(appUrl: string, sessionToken: string): Browser {
    const browser = new Browser(appUrl);
    browser.jar.set(SESSION_COOKIE, sessionToken);
    return browser;
  }

  cookieHeader(): string {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  /** The session cookie's value (a JWE), or undefined when signed out. */
  get sessionToken(): string | undefined {
    return this.jar.get(SESSION_COOKIE);
  }

  remember(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      const expired = /max-age=0/i.test(line) || /expires=Thu, 01 Jan 1970/i.test(line) || value === '';
      if (expired) this.jar.delete(name);
      else this.jar.set(name, value);
    }
  }

  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.jar.size > 0) headers.set('cookie', this.cookieHeader());
    const response = await fetch(`${this.appUrl}${path}`, { redirect: 'manual', ...init, headers });
    this.remember(response);
    return response;
  }

  async call(method: string, path: string, body?: unknown): Promise<{ status: number; json: Json; response: Response }> {
    const response = await this.fetch(path, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: response.status, json: (await response.json().catch(() => ({}))) as Json, response };
  }

  async csrfToken(): Promise<string> {
    const response = await this.fetch('/api/auth/csrf');
    return ((await response.json()) as { csrfToken: string }).csrfToken;
  }

  async signIn(email: string, password = PASSWORD): Promise<void> {
    const csrfToken = await this.csrfToken();
    await this.fetch('/api/auth/callback/credentials', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrfToken, email, password, json: 'true' }),
    });
    if (!this.sessionToken) throw new Error(`sign-in as ${email} set no session cookie`);
  }

  /** next-auth's sign-out (what signOut() from next-auth/react posts). */
  async signOut(): Promise<Response> {
    const csrfToken = await this.csrfToken();
    return this.fetch('/api/auth/signout', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrfToken, json: 'true' }),
    });
  }

  /** The session cookie as the WebSocket server and next-auth read it. */
  async session(): Promise<JWT> {
    const token = this.sessionToken;
    if (!token) throw new Error('not signed in');
    const decoded = await decode({ token, secret: TEST_NEXTAUTH_SECRET });
    if (!decoded) throw new Error('session cookie does not decode');
    return decoded;
  }
}

/** Records every control message published on `<prefix>$control` (validated by the protocol). */
export class ControlRecorder {
  readonly messages: ControlMessage[] = [];
  readonly invalid: string[] = [];
  #waiters: Array<{ match: (m: ControlMessage) => boolean; resolve: (m: ControlMessage) => void }> = [];

  private constructor(private readonly redis: Redis) {}

  static async start(redisUrl: string, prefix: string): Promise<ControlRecorder> {
    const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    const recorder = new ControlRecorder(redis);
    redis.on('message', (_channel: string, text: string) => recorder.#receive(text));
    await redis.connect();
    await redis.subscribe(`${prefix}${CONTROL_CHANNEL}`);
    return recorder;
  }

  #receive(text: string): void {
    const parsed = controlMessageSchema.safeParse(JSON.parse(text));
    if (!parsed.success) {
      this.invalid.push(text);
      return;
    }
    this.messages.push(parsed.data);
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.match(parsed.data)) return true;
      w.resolve(parsed.data);
      return false;
    });
  }

  /** The first recorded or future message that matches, within `timeoutMs`. */
  next(match: (m: ControlMessage) => boolean, timeoutMs = 5_000): Promise<ControlMessage> {
    const seen = this.messages.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w.resolve !== done);
        reject(new Error(`no matching control message in ${timeoutMs} ms; got ${JSON.stringify(this.messages).slice(-1500)}`));
      }, timeoutMs);
      const done = (m: ControlMessage) => {
        clearTimeout(timer);
        resolve(m);
      };
      this.#waiters.push({ match, resolve: done });
    });
  }

  /**
   * Everything recorded from `mark` (a `messages.length` taken earlier) up to and including the
   * first later message matching `until`. The app publishes in request order on one connection,
   * so once `until` (published by a later request) has arrived, anything an earlier request
   * published has arrived too: the way to show that a request published nothing.
   */
  async between(mark: number, until: (m: ControlMessage) => boolean): Promise<ControlMessage[]> {
    const last = await this.next((m) => this.messages.indexOf(m) >= mark && until(m));
    return this.messages.slice(mark, this.messages.indexOf(last));
  }

  async stop(): Promise<void> {
    this.redis.disconnect();
  }
}
