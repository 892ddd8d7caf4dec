import { redirect } from 'next/navigation';
import { NewPostForm } from '@/components/NewPostForm.tsx';
import { currentUser } from '@/lib/auth.ts';

export const metadata = { title: 'New post · fonana' };

export default async function NewPostPage() {
  const user = await currentUser();
  if (!user) redirect('/signin?callbackUrl=/posts/new');
  if (!user.isCreator) redirect('/');
  return (
    <div className="card">
      <h1>New post</h1>
      <NewPostForm />
    </div>
  );
}
