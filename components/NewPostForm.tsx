'use client';
import { useRouter } from 'next/navigation';
import { useState, type FormEvent } from 'react';
import { api } from '@/hooks/api-client.ts';

export function NewPostForm() {
  const router = useRouter();
  const [isLocked, setIsLocked] = useState(false);
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const price = String(form.get('price') ?? '').trim();
    setPending(true);
    setError(null);
    try {
      const { post } = await api.createPost({
        title: String(form.get('title') ?? ''),
        content: String(form.get('content') ?? ''),
        isLocked,
        requiredTier: String(form.get('tier') ?? 'BASIC'),
        priceCents: isLocked && price ? Math.round(Number(price) * 100) : null,
      });
      router.push(`/posts/${post.id}`);
    } catch (e) {
      setError((e as Error).message);
      setPending(false);
    }
  }

  return (
    <form className="stack" onSubmit={submit}>
      <label>
        Title
        <input type="text" name="title" required maxLength={300} />
      </label>
      <label>
        Content
        <textarea name="content" required maxLength={20000} />
      </label>
      <label className="inline">
        <input type="checkbox" checked={isLocked} onChange={(e) => setIsLocked(e.target.checked)} /> Subscribers only
      </label>
      {isLocked && (
        <div className="row">
          <label>
            Minimum tier
            <select name="tier" defaultValue="BASIC">
              <option>BASIC</option>
              <option>PREMIUM</option>
              <option>VIP</option>
            </select>
          </label>
          <label>
            One-off price (optional, $)
            <input type="number" name="price" min="0.5" step="0.01" />
          </label>
        </div>
      )}
      {error && <p className="error">{error}</p>}
      <div>
        <button type="submit" className="button" disabled={pending}>
          {pending ? 'Publishing…' : 'Publish'}
        </button>
      </div>
    </form>
  );
}
