import { readFile, rename, rm, writeFile } from "node:fs/promises";

/** One contiguous piece of the file: bytes [start, end) of which the first `done` are on disk. */
export interface PartRange {
  start: number;
  /** Exclusive; null while the size is unknown (one range reaching to the end). */
  end: number | null;
  done: number;
}

/**
 * What `${partPath}.json` holds, so that a later call (or another process) can resume: the request
 * it belongs to and how far each range got. In "single" mode the part file is written front to
 * back and its own length says how far it got; in "parts" mode it was allocated at full size and
 * only the ranges say which bytes are real.
 */
export interface PartState {
  version: 1;
  url: string;
  size: number | null;
  sha256: string | null;
  /** The server's entity tag of the file (X-Linked-Etag, else a strong ETag), unquoted. */
  etag: string | null;
  mode: "single" | "parts";
  ranges: PartRange[];
  updatedAt: string;
}

export function sidecarPath(partPath: string): string {
  return `${partPath}.json`;
}

function isRange(r: unknown): r is PartRange {
  if (typeof r !== "object" || r === null) return false;
  const { start, end, done } = r as Record<string, unknown>;
  const int = (v: unknown) => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
  return int(start) && int(done) && (end === null || (int(end) && (end as number) >= (start as number)));
}

/** Reads a sidecar; undefined when it is missing or not one of ours. */
export async function readPartState(partPath: string): Promise<PartState | undefined> {
  let text: string;
  try {
    text = await readFile(sidecarPath(partPath), "utf8");
  } catch {
    return undefined;
  }
  try {
    const s = JSON.parse(text) as Partial<PartState>;
    if (s.version !== 1 || typeof s.url !== "string" || (s.mode !== "single" && s.mode !== "parts")) return undefined;
    if (!Array.isArray(s.ranges) || s.ranges.length === 0 || !s.ranges.every(isRange)) return undefined;
    if (s.size !== null && !(typeof s.size === "number" && Number.isSafeInteger(s.size) && s.size >= 0))
      return undefined;
    return {
      version: 1,
      url: s.url,
      size: s.size,
      sha256: typeof s.sha256 === "string" ? s.sha256 : null,
      etag: typeof s.etag === "string" ? s.etag : null,
      mode: s.mode,
      ranges: s.ranges.map((r) => ({
        start: r.start,
        end: r.end,
        done: Math.min(r.done, (r.end ?? Infinity) - r.start),
      })),
      updatedAt: typeof s.updatedAt === "string" ? s.updatedAt : "",
    };
  } catch {
    return undefined;
  }
}

/**
 * Saves sidecars: each write goes to a temporary file renamed over the sidecar, so a crash leaves
 * the old or the new state, never half of one. Saves never overlap; one asked for while another
 * runs happens right after it, with the newest state.
 */
export class PartStateFile {
  readonly #path: string;
  readonly #tmp: string;
  #running: Promise<void> | undefined;
  #again = false;
  #snapshot: () => PartState;

  constructor(partPath: string, snapshot: () => PartState) {
    this.#path = sidecarPath(partPath);
    this.#tmp = `${this.#path}.tmp`;
    this.#snapshot = snapshot;
  }

  /** Saves the current state (after any save already running). */
  save(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = this.#loop().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #loop(): Promise<void> {
    do {
      this.#again = false;
      const state = { ...this.#snapshot(), updatedAt: new Date().toISOString() };
      await writeFile(this.#tmp, `${JSON.stringify(state)}\n`);
      await rename(this.#tmp, this.#path);
    } while (this.#again);
  }

  /** Deletes the sidecar (after a save in flight). */
  async remove(): Promise<void> {
    await this.#running?.catch(() => undefined);
    await rm(this.#path, { force: true });
    await rm(this.#tmp, { force: true });
  }
}
