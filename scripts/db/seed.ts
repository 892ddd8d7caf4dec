// `npm run db:seed`: demo accounts and content for trying the app by hand. Every row has a
// fixed key (email, a `demo-…` id or a unique pair) and is upserted back to its demo state, so
// running it again repairs the demo data instead of duplicating it. Tests never use it.
import { pathToFileURL } from 'node:url';
import bcrypt from 'bcryptjs';
import { createPrismaClient } from '../../lib/db/prisma-client.ts';

export const DEMO_PASSWORD = 'password';

const YEAR_MS = 365 * 24 * 60 * 60 * 1000;

export async function seedDemoData(databaseUrl: string): Promise<{ users: number; posts: number }> {
  const prisma = createPrismaClient(databaseUrl, { poolMax: 2 });
  try {
    const passwordHash = await bcrypt.hash(DEMO_PASSWORD, 10);
    const user = (email: string, name: string, isCreator: boolean, bio: string | null = null, isAdmin = false) =>
      prisma.user.upsert({
        where: { email },
        create: { email, name, isCreator, bio, passwordHash, isAdmin },
        update: { name, isCreator, bio, passwordHash, isAdmin },
      });
    const alice = await user('alice@example.com', 'Alice', true, 'Photographer. Behind-the-scenes for subscribers.');
    const bob = await user('bob@example.com', 'Bob', false);
    // Carol is the demo operator: she may open /admin and publish site-wide broadcasts.
    const carol = await user('carol@example.com', 'Carol', false, null, true);
    const dave = await user('dave@example.com', 'Dave', true, 'Music producer. Stems for premium fans.');

    const post = (id: string, data: {
      authorId: string; title: string; content: string;
      isLocked?: boolean; requiredTier?: 'BASIC' | 'PREMIUM' | 'VIP'; priceCents?: number | null;
    }) => prisma.post.upsert({ where: { id }, create: { id, ...data }, update: data });
    const alicePublic = await post('demo-post-alice-public', {
      authorId: alice.id,
      title: 'Hello from Alice',
      content: 'Welcome! Everyone can read this post.',
    });
    const aliceLocked = await post('demo-post-alice-basic', {
      authorId: alice.id,
      title: 'Behind the scenes',
      content: 'Subscribers (BASIC and up) or buyers can read this.',
      isLocked: true,
      requiredTier: 'BASIC',
      priceCents: 500,
    });
    const davePremium = await post('demo-post-dave-premium', {
      authorId: dave.id,
      title: 'Unreleased track stems',
      content: 'PREMIUM subscribers only.',
      isLocked: true,
      requiredTier: 'PREMIUM',
      priceCents: null,
    });

    // Bob subscribes to Alice (BASIC, active for a year); Carol has no subscription.
    const expiresAt = new Date(Date.now() + YEAR_MS);
    await prisma.subscription.upsert({
      where: { subscriberId_creatorId: { subscriberId: bob.id, creatorId: alice.id } },
      create: { subscriberId: bob.id, creatorId: alice.id, tier: 'BASIC', status: 'ACTIVE', expiresAt },
      update: { tier: 'BASIC', status: 'ACTIVE', expiresAt },
    });

    for (const userId of [bob.id, carol.id]) {
      await prisma.like.upsert({
        where: { userId_postId: { userId, postId: alicePublic.id } },
        create: { userId, postId: alicePublic.id },
        update: {},
      });
    }
    const comment = (id: string, authorId: string, postId: string, content: string) =>
      prisma.comment.upsert({
        where: { id },
        create: { id, authorId, postId, content },
        update: { authorId, postId, content },
      });
    await comment('demo-comment-carol', carol.id, alicePublic.id, 'Lovely work!');
    await comment('demo-comment-bob', bob.id, aliceLocked.id, 'Worth the subscription.');

    // The counters are denormalised; recompute them from the rows so they stay exact.
    for (const p of [alicePublic, aliceLocked, davePremium]) {
      const [likesCount, commentsCount] = await Promise.all([
        prisma.like.count({ where: { postId: p.id } }),
        prisma.comment.count({ where: { postId: p.id } }),
      ]);
      await prisma.post.update({ where: { id: p.id }, data: { likesCount, commentsCount } });
    }

    const notification = (id: string, type: string, title: string, message: string, data: object) =>
      prisma.notification.upsert({
        where: { id },
        create: { id, userId: alice.id, type, title, message, data },
        update: { userId: alice.id, type, title, message, data, isRead: false },
      });
    await notification('demo-notification-subscriber', 'NEW_SUBSCRIBER', 'New subscriber',
      'Bob subscribed to your BASIC tier', { subscriberId: bob.id, tier: 'BASIC' });
    await notification('demo-notification-comment', 'COMMENT', 'New comment',
      'Carol commented on "Hello from Alice"', { postId: alicePublic.id, commentId: 'demo-comment-carol' });

    return { users: 4, posts: 3 };
  } finally {
    await prisma.$disconnect();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const url = process.env.DATABASE_URL;
  if (!url) {
    console.error('DATABASE_URL is not set');
    process.exit(1);
  }
  const { users, posts } = await seedDemoData(url);
  console.log(`seeded ${users} demo users and ${posts} posts (password: "${DEMO_PASSWORD}")`);
}
