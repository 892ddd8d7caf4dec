/**
 * The real-time protocol, the single source of channel names, frames, events and codes for the
 * WebSocket server, the Next.js publisher (lib/realtime) and the browser hook (hooks/). It has
 * no Node.js imports so that it bundles for the browser.
 */
export * from './channels.ts';
export * from './codes.ts';
export * from './control.ts';
export * from './events.ts';
export * from './handshake.ts';
export * from './history.ts';
export * from './messages.ts';
