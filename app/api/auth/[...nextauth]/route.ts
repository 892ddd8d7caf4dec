import NextAuth from 'next-auth';
import { authOptions } from '@/lib/auth.ts';

// Built per request from the lazily parsed configuration, so `next build` needs no secrets.
// next-auth's App Router handler is `(request, {params}) => Response`.
type Handler = (request: Request, context: { params: Promise<{ nextauth: string[] }> }) => Promise<Response>;
const handler: Handler = (request, context) => (NextAuth(authOptions()) as Handler)(request, context);

export { handler as GET, handler as POST };
