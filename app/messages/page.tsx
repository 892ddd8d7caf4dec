import { redirect } from 'next/navigation';
import { ConversationList } from '@/components/messages/ConversationList.tsx';
import { NewConversationForm } from '@/components/messages/NewConversationForm.tsx';
import { currentUser } from '@/lib/auth.ts';
import { CONVERSATIONS_PAGE, listConversations, messageableContacts } from '@/lib/domain/messages.ts';

export default async function MessagesPage() {
  const user = await currentUser();
  if (!user) redirect('/signin?callbackUrl=/messages');
  // The first page carries the channel's position, read before the rows.
  const [page, contacts] = await Promise.all([listConversations(user.id, { limit: CONVERSATIONS_PAGE.default }), messageableContacts(user.id)]);
  return (
    <>
      <h1>Messages</h1>
      <p className="muted">Between creators and their subscribers.</p>
      <ConversationList userId={user.id} initial={page.conversations} position={page.position ?? null} />
      <NewConversationForm contacts={contacts} />
    </>
  );
}
