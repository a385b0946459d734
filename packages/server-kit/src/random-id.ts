import { randomFillSync } from "node:crypto";

/** Random bytes for ids, drawn from the OS 4 KiB at a time (as randomUUID does) rather than once an id. */
const pool = Buffer.alloc(4096);
let offset = pool.length;

/** `bytes` random bytes as hex: the id of a response or message (chatcmpl-..., msg_...), one per request. */
export function randomHex(bytes: number): string {
  if (bytes > pool.length) throw new RangeError(`randomHex: at most ${pool.length} bytes`);
  if (offset + bytes > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const hex = pool.toString("hex", offset, offset + bytes);
  offset += bytes;
  return hex;
}
