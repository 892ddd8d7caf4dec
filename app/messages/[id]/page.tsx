import Link from 'next/link';
import { notFound, redirect } from 'next/navigation';
import { Thread } from '@/components/messages/Thread.tsx';
import { ApiError } from '@/lib/api/errors.ts';
import { currentUser } from '@/lib/auth.ts';
import { conversationMessages, mayMessage, MESSAGES_PAGE } from '@/lib/domain/messages.ts';

const ID = /^[A-Za-z0-9-]{1,64}$/;

export default async function ConversationPage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  const user = await currentUser();
  if (!user) redirect(`/signin?callbackUrl=/messages/${encodeURIComponent(id)}`);
  if (!ID.test(id)) notFound();
  // 404 for a conversation the user takes no part in, as the API answers. The page carries the
  // position of messages_{me} read before the messages (see conversationMessages).
  const page = await conversationMessages(user.id, id, { limit: MESSAGES_PAGE.default }).catch((error: unknown) => {
    if (error instanceof ApiError && error.status === 404) notFound();
    throw error;
  });
  const other = page.conversation.otherUser;
  const canWrite = await mayMessage(user.id, other.id);
  return (
    <>
      <p className="muted">
        <Link href="/messages">← Messages</Link>
      </p>
      <h1>{other.isCreator ? <Link href={`/creators/${other.id}`}>{other.name}</Link> : other.name}</h1>
      <Thread
        me={{ id: user.id, name: user.name }}
        other={other}
        conversationId={page.conversation.id}
        initialMessages={page.messages}
        initialCursor={page.nextCursor}
        position={page.position ?? null}
        canWrite={canWrite}
      />
    </>
  );
}
