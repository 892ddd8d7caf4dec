import { z } from 'zod';
import { apiRoute, json } from '@/lib/api/handler.ts';
import { requireUser } from '@/lib/api/session.ts';
import { parseBody } from '@/lib/api/validate.ts';
import { createPost } from '@/lib/domain/posts.ts';

const newPostSchema = z
  .object({
    title: z.string().trim().min(1).max(300),
    content: z.string().trim().min(1).max(20_000),
    isLocked: z.boolean().default(false),
    requiredTier: z.enum(['BASIC', 'PREMIUM', 'VIP']).default('BASIC'),
    /** Cents; null or absent: the post cannot be bought one-off. */
    priceCents: z.number().int().min(50).max(1_000_000).nullable().default(null),
  })
  .strict();

/** POST /api/posts: a creator publishes a post. */
export const POST = apiRoute(async (request) => {
  const user = await requireUser();
  const input = await parseBody(request, newPostSchema);
  return json(await createPost(user, input), 201);
});
