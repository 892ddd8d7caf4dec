import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../../../generated/prisma/client.ts';
import type { Directory, PostAccessFacts, SubscriptionFacts } from './directory.ts';
import { toNotificationPayload, type NotificationPayload } from '../protocol/index.ts';

export class PrismaDirectory implements Directory {
  readonly #prisma: PrismaClient;

  constructor(databaseUrl: string, options: { poolMax: number }) {
    // Handshakes and subscribes are short point lookups; a small pool is plenty per process.
    const adapter = new PrismaPg({ connectionString: databaseUrl, max: options.poolMax, idleTimeoutMillis: 10_000 });
    this.#prisma = new PrismaClient({ adapter });
  }

  async userExists(userId: string): Promise<boolean> {
    return (await this.#prisma.user.findUnique({ where: { id: userId }, select: { id: true } })) !== null;
  }

  async creatorExists(creatorId: string): Promise<boolean> {
    const user = await this.#prisma.user.findUnique({ where: { id: creatorId }, select: { isCreator: true } });
    return user?.isCreator === true;
  }

  async findPost(postId: string): Promise<PostAccessFacts | null> {
    return this.#prisma.post.findUnique({
      where: { id: postId },
      select: { id: true, authorId: true, isLocked: true, requiredTier: true },
    });
  }

  async findSubscription(subscriberId: string, creatorId: string): Promise<SubscriptionFacts | null> {
    return this.#prisma.subscription.findUnique({
      where: { subscriberId_creatorId: { subscriberId, creatorId } },
      select: { status: true, tier: true, expiresAt: true },
    });
  }

  async hasPurchased(userId: string, postId: string): Promise<boolean> {
    const purchase = await this.#prisma.postPurchase.findUnique({
      where: { userId_postId: { userId, postId } },
      select: { id: true },
    });
    return purchase !== null;
  }

  async unreadNotifications(userId: string, limit: number): Promise<{ notifications: NotificationPayload[]; count: number }> {
    const where = { userId, isRead: false };
    const [rows, count] = await Promise.all([
      this.#prisma.notification.findMany({ where, orderBy: { createdAt: 'desc' }, take: limit }),
      this.#prisma.notification.count({ where }),
    ]);
    const notifications = rows.map(toNotificationPayload);
    return { notifications, count };
  }

  async ping(): Promise<void> {
    await this.#prisma.$queryRaw`SELECT 1`;
  }

  async close(): Promise<void> {
    await this.#prisma.$disconnect();
  }
}
