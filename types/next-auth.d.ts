// The session carries the user's id (the JWT's `sub`), which every API route and the
// WebSocket server key on.
import type { DefaultSession } from 'next-auth';

declare module 'next-auth' {
  interface Session {
    user: { id: string; isCreator: boolean } & DefaultSession['user'];
  }
  interface User {
    isCreator?: boolean;
  }
}

declare module 'next-auth/jwt' {
  interface JWT {
    sub?: string;
    isCreator?: boolean;
    /** 'realtime' on the short-lived socket tokens, which are not sessions. */
    scope?: string;
  }
}
