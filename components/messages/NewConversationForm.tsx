'use client';
/** Writes a first (or next) message to someone the rule allows, then opens the conversation. */
import { useRouter } from 'next/navigation';
import { useState, type FormEvent } from 'react';
import { MAX_MESSAGE_LENGTH } from '@/websocket-server/src/protocol/index.ts';
import { messagesApi, type Person } from './api.ts';

export function NewConversationForm({ contacts }: { contacts: Person[] }) {
  const router = useRouter();
  const [recipientId, setRecipientId] = useState(contacts[0]?.id ?? '');
  const [body, setBody] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [sending, setSending] = useState(false);

  if (contacts.length === 0) {
    return <p className="muted">Subscribe to a creator (or get subscribers) to write to them.</p>;
  }

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!recipientId || body.trim() === '') return;
    setSending(true);
    setError(null);
    try {
      const { conversation } = await messagesApi.send(recipientId, body.trim());
      router.push(`/messages/${conversation.id}`);
    } catch (e) {
      setError((e as Error).message);
      setSending(false);
    }
  };

  return (
    <form className="card stack" onSubmit={(e) => void submit(e)} data-testid="new-conversation">
      <strong>New message</strong>
      <label className="row">
        To
        <select value={recipientId} onChange={(e) => setRecipientId(e.target.value)} data-testid="new-conversation-to">
          {contacts.map((p) => (
            <option key={p.id} value={p.id}>
              {p.name}
              {p.isCreator ? ' (creator)' : ''}
            </option>
          ))}
        </select>
      </label>
      <textarea aria-label="Message" rows={3} maxLength={MAX_MESSAGE_LENGTH} value={body} onChange={(e) => setBody(e.target.value)} />
      <div className="row">
        <button type="submit" className="button" disabled={sending || body.trim() === ''}>
          Send
        </button>
        {error && <span className="error">{error}</span>}
      </div>
    </form>
  );
}
