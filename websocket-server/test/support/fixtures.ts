/**
 * Rows for tests, written into this run's scratch database with the real Prisma client. Every
 * email carries a random suffix so suites never collide.
 */
import { randomBytes } from 'node:crypto';
import { createPrismaClient } from '../../../lib/db/prisma-client.ts';
import { testDatabaseUrl } from '../../../test/support/env.ts';

type Prisma = ReturnType<typeof createPrismaClient>;
type Tier = 'BASIC' | 'PREMIUM' | 'VIP';

export class Fixtures {
  readonly prisma: Prisma;

  constructor() {
    this.prisma = createPrismaClient(testDatabaseUrl(), { poolMax: 3 });
  }

  async user(options: { name?: string; isCreator?: boolean } = {}) {
    const tag = randomBytes(5).toString('hex');
    return this.prisma.user.create({
      data: {
        email: `${options.name ?? 'user'}-${tag}@test.invalid`,
        name: options.name ?? `User ${tag}`,
        passwordHash: 'not-a-real-hash',
        isCreator: options.isCreator ?? false,
      },
    });
  }

  creator(name = 'creator') {
    return this.user({ name, isCreator: true });
  }

  post(authorId: string, options: { isLocked?: boolean; requiredTier?: Tier; priceCents?: number } = {}) {
    return this.prisma.post.create({
      data: {
        authorId,
        title: 'A post',
        content: 'Content',
        isLocked: options.isLocked ?? false,
        requiredTier: options.requiredTier ?? 'BASIC',
        priceCents: options.priceCents ?? null,
      },
    });
  }

  subscription(
    subscriberId: string,
    creatorId: string,
    options: { tier?: Tier; status?: 'ACTIVE' | 'CANCELLED' | 'EXPIRED'; expiresAt?: Date | null } = {},
  ) {
    return this.prisma.subscription.create({
      data: {
        subscriberId,
        creatorId,
        tier: options.tier ?? 'BASIC',
        status: options.status ?? 'ACTIVE',
        expiresAt: options.expiresAt === undefined ? new Date(Date.now() + 86_400_000) : options.expiresAt,
      },
    });
  }

  purchase(userId: string, postId: string) {
    return this.prisma.postPurchase.create({ data: { userId, postId, priceCents: 500 } });
  }

  notification(userId: string, options: { isRead?: boolean; title?: string } = {}) {
    return this.prisma.notification.create({
      data: { userId, type: 'LIKE', title: options.title ?? 'Someone liked your post', message: 'msg', isRead: options.isRead ?? false },
    });
  }

  close(): Promise<void> {
    return this.prisma.$disconnect();
  }
}
