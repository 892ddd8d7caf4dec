/**
 * The checks, in order: the unauthorized case first (on a socket of its own), then one
 * authenticated connection that pings, subscribes to what the user should and should not get,
 * and waits for a freshly published event. Expected refusals are checked as replies: a
 * forbidden channel never closes the connection.
 */
import { randomBytes } from 'node:crypto';
import { channelName, CLOSE_CODES } from '../../websocket-server/src/protocol/index.ts';
import { Connection, type ConnectOptions, type Frame, type Outcome } from './connection.ts';
import type { Identity } from './identity.ts';
import { findTargets, type GivenTargets } from './discovery.ts';
import type { Publisher } from './publisher.ts';
import type { CheckResult } from './report.ts';

export interface CheckPlan {
  connect: Omit<ConnectOptions, 'token' | 'cookies'>;
  identity: Identity;
  given: GivenTargets;
  databaseUrl: string | undefined;
  publisher: Publisher | undefined;
  publishDisabled: boolean;
  timeoutMs: number;
  /** Progress lines (stderr), so a slow step shows where it is. */
  log: (line: string) => void;
}

const pass = (name: string, expected: string, got: string): CheckResult => ({ name, expected, got, status: 'PASS' });
const fail = (name: string, expected: string, got: string): CheckResult => ({ name, expected, got, status: 'FAIL' });
const skip = (name: string, expected: string, why: string): CheckResult => ({ name, expected, got: why, status: 'SKIP' });

function describeOutcome(outcome: Outcome): string {
  switch (outcome.kind) {
    case 'open':
      return 'connected';
    case 'closed':
      return `closed ${outcome.code}${outcome.reason ? ` (${outcome.reason})` : ''}`;
    case 'http':
      return `HTTP ${outcome.status}${outcome.status === 403 ? ' (Origin not allowed?)' : ''}`;
    case 'error':
      return outcome.message;
  }
}

function describeReply(reply: Frame): string {
  if (reply.type === 'error') return `error ${String(reply.code)}`;
  return reply.type;
}

export async function runChecks(plan: CheckPlan): Promise<CheckResult[]> {
  const { identity, timeoutMs, log } = plan;
  const results: CheckResult[] = [];

  log('unauthorized connection');
  const refused = await Connection.open({ ...plan.connect, token: `not-a-session-${randomBytes(8).toString('hex')}` });
  if (refused.kind === 'open') refused.connection.close();
  results.push(
    refused.kind === 'closed' && refused.code === CLOSE_CODES.unauthorized
      ? pass('bad token is refused', `close ${CLOSE_CODES.unauthorized}`, describeOutcome(refused))
      : fail('bad token is refused', `close ${CLOSE_CODES.unauthorized}`, describeOutcome(refused)),
  );

  log(`connecting (${identity.source})`);
  const opened = await Connection.open({ ...plan.connect, token: identity.token, cookies: identity.cookies });
  if (opened.kind !== 'open') {
    results.push(fail('connect with the session', 'connected', describeOutcome(opened)));
    return results;
  }
  const connection = opened.connection;
  try {
    const connected = connection.frames.find((f) => f.type === 'connected') as { userId?: string } | undefined;
    const userId = connected?.userId ?? '';
    results.push(
      identity.userId && identity.userId !== userId
        ? fail('connect with the session', `user ${identity.userId}`, `user ${userId}`)
        : pass('connect with the session', 'connected', `connected as ${userId}`),
    );

    const pingStarted = Date.now();
    const pong = await connection.request({ type: 'ping' }, timeoutMs).catch((error: Error) => error);
    results.push(
      pong instanceof Error || pong.type !== 'pong'
        ? fail('ping', 'pong', pong instanceof Error ? pong.message : describeReply(pong))
        : pass('ping', 'pong', `pong in ${Date.now() - pingStarted} ms`),
    );

    let targets;
    try {
      targets = await findTargets(userId, plan.given, plan.databaseUrl);
      log(`channels from ${targets.source}`);
    } catch (error) {
      results.push(fail('find channels to check', 'database lookup', (error as Error).message));
      targets = { ...plan.given, otherUserId: plan.given.otherUserId ?? 'test-client-someone-else', source: 'command line' };
    }

    const subscribe = async (name: string, channel: string | undefined, expected: 'subscribed' | `error ${string}`, missing: string) => {
      const label = `${name}${channel ? ` (${channel})` : ''}`;
      if (!channel) {
        results.push(skip(name, expected, missing));
        return false;
      }
      log(`subscribe ${channel}`);
      const reply = await connection.request({ type: 'subscribe', channel }, timeoutMs).catch((error: Error) => error);
      const got = reply instanceof Error ? reply.message : describeReply(reply);
      results.push(got === expected ? pass(label, expected, got) : fail(label, expected, got));
      return got === expected;
    };

    const ownNotifications = channelName.notifications(userId);
    if (await subscribe('own notifications', ownNotifications, 'subscribed', '')) {
      const unread = await connection
        .next((f) => f.type === 'unread_notifications' && f.channel === ownNotifications, timeoutMs)
        .catch((error: Error) => error);
      results.push(
        unread instanceof Error
          ? fail('unread notifications pushed on subscribe', 'unread_notifications', unread.message)
          : pass('unread notifications pushed on subscribe', 'unread_notifications', `count ${String((unread.data as { count?: number }).count)}`),
      );
    }
    const ownFeed = channelName.feed(userId);
    const feedOk = await subscribe('own feed', ownFeed, 'subscribed', '');
    await subscribe('someone else’s notifications', channelName.notifications(targets.otherUserId), 'error forbidden', '');
    await subscribe('someone else’s feed', channelName.feed(targets.otherUserId), 'error forbidden', '');
    await subscribe('a creator', targets.creatorId && channelName.creator(targets.creatorId), 'subscribed', 'no creator (--creator-id)');
    await subscribe('an unknown creator', channelName.creator(`test-client-nobody-${randomBytes(4).toString('hex')}`), 'error not_found', '');
    await subscribe('a public post', targets.publicPostId && channelName.post(targets.publicPostId), 'subscribed', 'no public post (--public-post-id)');
    await subscribe(
      'a locked post it may not read',
      targets.forbiddenPostId && channelName.post(targets.forbiddenPostId),
      'error forbidden',
      'none found (--forbidden-post-id)',
    );
    await subscribe('an unknown channel kind', `bogus_${randomBytes(4).toString('hex')}`, 'error invalid_channel', '');

    const deliveryName = 'published event is delivered';
    if (plan.publishDisabled) results.push(skip(deliveryName, 'feed_update', '--no-publish'));
    else if (!plan.publisher) results.push(skip(deliveryName, 'feed_update', 'no REDIS_URL, or --publish-url + WS_PUBLISH_SECRET'));
    else if (!feedOk) results.push(fail(deliveryName, 'feed_update', 'not subscribed to the own feed'));
    else {
      // A deletion of a post that never existed: harmless if the user's real browser tab
      // receives it too (removing a missing post from a list changes nothing).
      const postId = `test-client-${randomBytes(6).toString('hex')}`;
      log(`publishing feed_update to ${ownFeed} via ${plan.publisher.via}`);
      const started = Date.now();
      try {
        const note = await plan.publisher.publish(ownFeed, { type: 'feed_update', data: { reason: 'post_deleted', postId } });
        await connection.next((f) => f.type === 'feed_update' && (f.data as { postId?: string }).postId === postId, timeoutMs);
        results.push(pass(deliveryName, 'feed_update', `in ${Date.now() - started} ms (${note})`));
      } catch (error) {
        results.push(fail(deliveryName, 'feed_update', `${(error as Error).message} via ${plan.publisher.via}`));
      }
    }

    const unsubscribed = await connection.request({ type: 'unsubscribe', channel: ownFeed }, timeoutMs).catch((error: Error) => error);
    const got = unsubscribed instanceof Error ? unsubscribed.message : describeReply(unsubscribed);
    results.push(got === 'unsubscribed' ? pass('unsubscribe', 'unsubscribed', got) : fail('unsubscribe', 'unsubscribed', got));
  } finally {
    connection.close();
  }
  return results;
}
