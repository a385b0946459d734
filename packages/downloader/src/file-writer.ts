import type { FileHandle } from "node:fs/promises";
import type { BodySink } from "./http1-client.js";

/**
 * Socket reads land in 256 KiB slabs, each written with one positional write while the next
 * fills. Small slabs matter: the bytes are still in the CPU cache when the write copies them to
 * the page cache (1 MiB slabs measured at half the throughput, 4 MiB at a third).
 */
const SLAB_BYTES = 256 * 1024;
/** Slabs one writer may fill while earlier ones are being written (then it pauses the socket). */
const MAX_SLABS = 8;
/** The most one socket read may take. */
const READ_BYTES = 128 * 1024;
/** A slab with less room than this is written out. */
const MIN_READ_BYTES = 32 * 1024;
/** A slab that filled slowly (a slow link) is written out after this long anyway. */
const SEAL_AFTER_MS = 200;

const spareSlabs: Buffer[] = [];
const MAX_SPARE_SLABS = 64;

export interface FileWriterOptions {
  /** Called as the bytes on disk grow: `total` written contiguously from the start position. */
  onWritten(total: number): void;
  /** A write failed (ENOSPC, EIO): the body must stop. */
  onError(err: Error): void;
}

/**
 * A BodySink that writes a response body into a file at a position, without copying: the socket
 * reads into slabs, and each full slab goes out with one positional write while the next fills
 * (backpressure: when all slabs wait for their writes, the socket pauses).
 * Several writes are in flight at once (one writev of all waiting slabs at a time measured at half
 * the throughput). They may finish out of order; `written` only counts the contiguous bytes from
 * the start, so a crash can never claim bytes that are not on disk.
 */
export class FileWriter implements BodySink {
  readonly #fh: FileHandle;
  readonly #o: FileWriterOptions;
  #pos: number;
  #slabs = 0;
  #own: Buffer[] = [];
  #cur: Buffer | undefined;
  #fill = 0;
  #sealedAt = Date.now();
  #queue: Array<{ n: number; done: boolean }> = [];
  #inflight = new Set<Promise<void>>();
  #written = 0;
  #received = 0;
  #error: Error | undefined;
  #paused = false;
  #resume: (() => void) | undefined;

  constructor(fh: FileHandle, position: number, o: FileWriterOptions) {
    this.#fh = fh;
    this.#pos = position;
    this.#o = o;
  }

  /** Bytes written contiguously from the start position. */
  get written(): number {
    return this.#written;
  }

  /** Bytes handed to this writer (written or not yet). */
  get received(): number {
    return this.#received;
  }

  /** How to restart the socket after the writer asked for a pause. */
  onResume(resume: () => void): void {
    this.#resume = resume;
  }

  region(): Buffer | undefined {
    if (this.#error) return undefined;
    if (!this.#cur) this.#cur = this.#takeSlab(false);
    if (!this.#cur) return undefined;
    return this.#cur.subarray(this.#fill, Math.min(SLAB_BYTES, this.#fill + READ_BYTES));
  }

  filled(n: number): boolean {
    this.#fill += n;
    this.#received += n;
    this.#maybeSeal();
    return this.#hasRoom();
  }

  copy(bytes: Buffer): boolean {
    let rest = bytes;
    while (rest.length > 0) {
      if (!this.#cur) this.#cur = this.#takeSlab(true)!;
      const n = Math.min(SLAB_BYTES - this.#fill, rest.length);
      rest.copy(this.#cur, this.#fill, 0, n);
      this.#fill += n;
      this.#received += n;
      rest = rest.subarray(n);
      if (this.#fill === SLAB_BYTES) this.#seal();
    }
    this.#maybeSeal();
    return this.#hasRoom();
  }

  /** Writes what is buffered and waits for every write; throws the first write error. */
  async flush(): Promise<void> {
    this.#seal();
    while (this.#inflight.size > 0) await Promise.all(this.#inflight);
    for (const slab of this.#own.splice(0)) if (spareSlabs.length < MAX_SPARE_SLABS) spareSlabs.push(slab);
    if (this.#error) throw this.#error;
  }

  #hasRoom(): boolean {
    if (this.#error) return false;
    if (this.#cur && SLAB_BYTES - this.#fill >= MIN_READ_BYTES) return true;
    const room = this.#own.length > 0 || this.#slabs < MAX_SLABS;
    if (!room) this.#paused = true;
    return room;
  }

  #takeSlab(force: boolean): Buffer | undefined {
    const own = this.#own.pop();
    if (own) return own;
    if (this.#slabs >= MAX_SLABS && !force) return undefined;
    this.#slabs++;
    return spareSlabs.pop() ?? Buffer.allocUnsafe(SLAB_BYTES);
  }

  #maybeSeal(): void {
    if (SLAB_BYTES - this.#fill < MIN_READ_BYTES || Date.now() - this.#sealedAt >= SEAL_AFTER_MS) this.#seal();
  }

  #seal(): void {
    this.#sealedAt = Date.now();
    const slab = this.#cur;
    const n = this.#fill;
    if (!slab || n === 0) return;
    const at = this.#pos;
    this.#pos += n;
    this.#cur = undefined;
    this.#fill = 0;
    const entry = { n, done: false };
    this.#queue.push(entry);
    const p = this.#writeAll(slab, n, at).then(
      () => {
        entry.done = true;
        let grew = false;
        while (this.#queue[0]?.done) {
          this.#written += this.#queue.shift()!.n;
          grew = true;
        }
        this.#own.push(slab);
        if (grew) this.#o.onWritten(this.#written);
        if (this.#paused && !this.#error) {
          this.#paused = false;
          this.#resume?.();
        }
      },
      (err: Error) => {
        this.#error ??= err;
        this.#o.onError(err);
      },
    );
    this.#inflight.add(p);
    void p.finally(() => this.#inflight.delete(p));
  }

  async #writeAll(slab: Buffer, n: number, at: number): Promise<void> {
    let done = 0;
    while (done < n) {
      const { bytesWritten } = await this.#fh.write(slab, done, n - done, at + done);
      if (bytesWritten <= 0) throw new Error(`writing at ${at + done} wrote nothing`);
      done += bytesWritten;
    }
  }
}
