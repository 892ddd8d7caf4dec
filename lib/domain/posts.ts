/**
 * Posts: create, change access (lock, unlock, re-tier) and delete, with their fan-out, and the
 * reads the pages and API make. Each change, its events and its control messages are written in
 * one transaction (the outbox, lib/realtime.ts). Changes of who may read a post are announced to
 * the WebSocket nodes (an `entitlement_changed` control message), so that sockets that lose
 * access are unsubscribed from the post's channel at once.
 */
import { db } from '../db.ts';
import type { SessionUser } from '../auth.ts';
import { forbidden, notFound } from '../api/errors.ts';
import { announcePostAccessChange, publishPostCreated, publishPostDeleted } from '../realtime.ts';
import { accessTo } from './post-access.ts';
import { isRecordNotFound } from './prisma-errors.ts';
import { toCommentPayload, toPostSummary } from './serialize.ts';
import { activeSubscriberIds, subscribedCreatorIds } from './subscribers.ts';

export type Tier = 'BASIC' | 'PREMIUM' | 'VIP';

export interface NewPost {
  title: string;
  content: string;
  isLocked: boolean;
  requiredTier: Tier;
  priceCents: number | null;
}

export async function createPost(user: SessionUser, input: NewPost) {
  // The database, not the session, says who is a creator: the session may predate a change.
  const author = await db().user.findUnique({ where: { id: user.id }, select: { isCreator: true } });
  if (!author) throw notFound('your account no longer exists');
  if (!author.isCreator) throw forbidden('only creators can post');
  const summary = await db().$transaction(async (tx) => {
    const post = await tx.post.create({ data: { authorId: user.id, ...input }, include: { author: { select: { name: true } } } });
    // Summaries are loose objects: the author's name rides along so feeds can show it unfetched.
    const summary = { ...toPostSummary(post), authorName: post.author.name };
    await publishPostCreated(tx, summary, await activeSubscriberIds(user.id, tx));
    return summary;
  });
  return { post: summary };
}

export async function deletePost(user: SessionUser, postId: string) {
  const post = await db().post.findUnique({ where: { id: postId }, select: { authorId: true } });
  if (!post) throw notFound('no such post');
  if (post.authorId !== user.id) throw forbidden('only the author may delete a post');
  await db()
    .$transaction(async (tx) => {
      await tx.post.delete({ where: { id: postId } });
      // The event first (lower outbox id), so that members of post_{id} see post_deleted before
      // the nodes drop them.
      await publishPostDeleted(tx, postId, user.id, await activeSubscriberIds(user.id, tx));
      await announcePostAccessChange(tx, 'post_deleted', postId);
    })
    .catch((error: unknown) => {
      if (isRecordNotFound(error)) throw notFound('no such post');
      throw error;
    });
  return { deleted: true };
}

export interface PostAccessChange {
  isLocked?: boolean;
  requiredTier?: Tier;
}

/**
 * Its author locks, unlocks or re-tiers a post. Announced when it changes who may read it:
 * `post_locked`, `post_unlocked`, or `post_retiered` (a locked post's tier changed; the tier of
 * a public post decides nothing until it is locked). A change to what it already is announces
 * nothing.
 */
export async function changePostAccess(user: SessionUser, postId: string, change: PostAccessChange) {
  const result = await db().$transaction(async (tx) => {
    const before = await tx.post.findUnique({ where: { id: postId }, select: { authorId: true, isLocked: true, requiredTier: true } });
    if (!before) throw notFound('no such post');
    if (before.authorId !== user.id) throw forbidden('only the author may change a post');
    const after = await tx.post.update({
      where: { id: postId },
      data: change,
      include: { author: { select: { name: true } } },
    });
    const cause =
      !before.isLocked && after.isLocked
        ? 'post_locked'
        : before.isLocked && !after.isLocked
          ? 'post_unlocked'
          : after.isLocked && before.requiredTier !== after.requiredTier
            ? 'post_retiered'
            : null;
    if (cause) await announcePostAccessChange(tx, cause, postId);
    return { after, cause };
  });
  const { after, cause } = result;
  return { post: { ...toPostSummary(after), authorName: after.author.name }, changed: cause };
}

const COMMENTS_SHOWN = 100;

/**
 * A post as `viewerId` may see it: everything when they have access; otherwise the summary
 * only (title, tier, counters), with `locked: true` and neither content nor comments.
 */
export async function postForViewer(viewerId: string, postId: string) {
  const post = await db().post.findUnique({
    where: { id: postId },
    include: { author: { select: { id: true, name: true } } },
  });
  if (!post) return null;
  const access = await accessTo(viewerId, post);
  const base = {
    summary: toPostSummary(post),
    author: post.author,
    likesCount: post.likesCount,
    commentsCount: post.commentsCount,
    /** The statsVersion of these counters: an event with a higher `version` replaces them. */
    version: post.statsVersion,
    priceCents: post.priceCents,
  };
  if (!access) return { ...base, locked: true as const, access: null, content: null, comments: [], likedByMe: false };
  const [comments, like] = await Promise.all([
    db().comment.findMany({
      where: { postId },
      orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
      take: COMMENTS_SHOWN,
      include: { author: { select: { name: true } } },
    }),
    db().like.findUnique({ where: { userId_postId: { userId: viewerId, postId } }, select: { id: true } }),
  ]);
  return {
    ...base,
    locked: false as const,
    access,
    content: post.content,
    comments: comments.map(toCommentPayload),
    likedByMe: like !== null,
  };
}

export type PostView = NonNullable<Awaited<ReturnType<typeof postForViewer>>>;

const FEED_SIZE = 50;

/** Newest posts of the creators `userId` actively subscribes to, as summaries. */
export async function feedFor(userId: string) {
  const creatorIds = await subscribedCreatorIds(userId);
  if (creatorIds.length === 0) return { creatorIds, posts: [] };
  const posts = await db().post.findMany({
    where: { authorId: { in: creatorIds } },
    orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
    take: FEED_SIZE,
    include: { author: { select: { name: true } } },
  });
  return {
    creatorIds,
    posts: posts.map((p) => ({ ...toPostSummary(p), authorName: p.author.name, likesCount: p.likesCount, commentsCount: p.commentsCount })),
  };
}

export async function postsOfCreator(creatorId: string) {
  const posts = await db().post.findMany({
    where: { authorId: creatorId },
    orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
    take: FEED_SIZE,
    include: { author: { select: { name: true } } },
  });
  return posts.map((p) => ({ ...toPostSummary(p), authorName: p.author.name, likesCount: p.likesCount, commentsCount: p.commentsCount }));
}
