import type { NextConfig } from 'next';

const config: NextConfig = {
  // A separate output directory lets the end-to-end tests build the app (NEXT_DIST_DIR=
  // .next/e2e) without touching a developer's `.next` build or the `.next/dev` of `next dev`.
  distDir: process.env.NEXT_DIST_DIR || '.next',
  reactStrictMode: true,
  poweredByHeader: false,
  // Next.js rewrites the tsconfig it checks with (allowJs, generated type paths per distDir);
  // this one already lists all of it, so builds never modify the tracked tsconfig.json.
  typescript: { tsconfigPath: 'tsconfig.next.json' },
  // Node-only drivers stay out of the server bundle and are required at run time: pg and
  // ioredis open sockets and keep pools, which bundling gains nothing from.
  serverExternalPackages: ['@prisma/adapter-pg', 'pg', 'ioredis', 'bcryptjs'],
  // The protocol module lives in the WebSocket server's workspace and is imported by path;
  // Turbopack compiles it like any other source file of this project.
};

export default config;
