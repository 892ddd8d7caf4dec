'use client';
import { useState, type FormEvent } from 'react';

export function CommentForm({ onSubmit }: { onSubmit: (content: string) => Promise<void> }) {
  const [content, setContent] = useState('');
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function submit(event: FormEvent) {
    event.preventDefault();
    const text = content.trim();
    if (!text) return;
    setPending(true);
    setError(null);
    try {
      await onSubmit(text);
      setContent('');
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setPending(false);
    }
  }

  return (
    <form className="stack" onSubmit={submit} style={{ marginTop: 12 }}>
      <textarea
        value={content}
        onChange={(e) => setContent(e.target.value)}
        placeholder="Write a comment…"
        maxLength={5000}
        aria-label="Comment"
        data-testid="comment-input"
      />
      {error && <p className="error">{error}</p>}
      <div>
        <button type="submit" className="button" disabled={pending || content.trim() === ''} data-testid="comment-submit">
          {pending ? 'Posting…' : 'Comment'}
        </button>
      </div>
    </form>
  );
}
