import Link from 'next/link';
import { redirect } from 'next/navigation';
import { currentUser } from '@/lib/auth.ts';
import { db } from '@/lib/db.ts';
import { subscribedCreatorIds } from '@/lib/domain/subscribers.ts';

export const metadata = { title: 'Creators · fonana' };

export default async function CreatorsPage() {
  const user = await currentUser();
  if (!user) redirect('/signin?callbackUrl=/creators');
  const [creators, following] = await Promise.all([
    db().user.findMany({
      where: { isCreator: true },
      orderBy: { name: 'asc' },
      select: { id: true, name: true, bio: true, _count: { select: { posts: true } } },
    }),
    subscribedCreatorIds(user.id),
  ]);
  return (
    <>
      <h1>Creators</h1>
      {creators.map((c) => (
        <div className="card" key={c.id}>
          <div className="row">
            <Link href={`/creators/${c.id}`}>
              <strong>{c.name}</strong>
            </Link>
            {following.includes(c.id) && <span className="badge">subscribed</span>}
            <span className="spacer" />
            <span className="muted">{c._count.posts} posts</span>
          </div>
          {c.bio && <p className="muted">{c.bio}</p>}
        </div>
      ))}
    </>
  );
}
