/**
 * Frames a text message once, with ws's own framer (`Sender.frame`), so one event bound for many
 * sockets is framed once and the very same bytes are written to each (what uWebSockets and
 * Centrifugo do). Server frames are never masked and nothing here compresses
 * (perMessageDeflate is off), so the framed bytes are identical for every socket.
 */
import * as wsModule from 'ws';

type FrameOptions = { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean };
// @types/ws does not declare Sender; ws exports it (lib/sender.js) from its ESM wrapper.
const { Sender } = wsModule as unknown as { Sender: { frame(data: Buffer, options: FrameOptions): Buffer[] } };

const TEXT = { fin: true, opcode: 0x1, mask: false, readOnly: false, rsv1: false } as const;

/** The complete WebSocket text frame (header and payload) of `payload`, in one Buffer. */
export function frameText(payload: Buffer): Buffer {
  const parts = Sender.frame(payload, TEXT);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}
