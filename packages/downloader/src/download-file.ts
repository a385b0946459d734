import { copyFile, type FileHandle, mkdir, open, rename, rm, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { RbeeError } from "@rbee/contract";
import { ChecksumMismatchError, DownloadError, formatBytes, InsufficientDiskError } from "./errors.js";
import { FileWriter } from "./file-writer.js";
import { checkFreeSpace, freeBytes } from "./free-space.js";
import { type Http1Response, HttpProtocolError, PrematureCloseError } from "./http1-client.js";
import { openResponse } from "./open-response.js";
import { type PartRange, type PartState, PartStateFile, readPartState, sidecarPath } from "./part-state.js";
import { PrefixHasher } from "./prefix-hasher.js";
import { type DownloadProgress, ProgressMeter } from "./progress.js";
import {
  backoffMs,
  describeFailure,
  HttpStatusFailure,
  isTransient,
  type RetryPolicy,
  retryPolicy,
  sleep,
} from "./retry.js";

/** One file to download. */
export interface DownloadRequest {
  /** Serves the bytes; redirects are followed, credentials dropped when one leaves the origin. */
  url: string;
  /** Request headers, e.g. `{ authorization: "Bearer hf_..." }`. */
  headers?: Record<string, string>;
  /** The final location, written only by an atomic rename after verification. */
  destPath: string;
  /** The unfinished bytes; `${partPath}.json` beside it holds what a resume needs. */
  partPath: string;
  /** The expected size in bytes, when known (from the Hub); else the server's Content-Length. */
  size?: number;
  /** The expected sha256, hex; checked before the rename. */
  sha256?: string;
  /** The file's entity tag as the caller knows it; a part written under another one starts over. */
  etag?: string;
  /** Ranged parts fetched at once (default 4 for files of 64 MiB or more when the size is known, else 1; at most one per 64 KiB). */
  parts?: number;
  /** Abort: stop, keep the part and its sidecar for a later call, and reject with the signal's reason. */
  signal?: AbortSignal;
  /** At most 10 calls a second, and one at the end. */
  onProgress?: (p: DownloadProgress) => void;
  /** Tries in a row without progress before giving up, and the backoff between them. Defaults 5, 500 ms, 30 s. */
  retry?: Partial<RetryPolicy>;
  /** A connection that delivers no bytes for this long is dropped and retried. Default 30 s. */
  stallTimeoutMs?: number;
}

/** A finished, verified download. */
export interface DownloadResult {
  /** Where the file is now (destPath). */
  path: string;
  size: number;
  /** The sha256 of the file, lowercase hex. */
  sha256: string;
  /** Bytes fetched over the network by this call. */
  fetchedBytes: number;
  /** Bytes already on disk from an earlier call when this one started. */
  resumedFromBytes: number;
  ms: number;
  /** Of `ms`, the time from the last byte written to the checksum (the hash mostly runs during the download). */
  verifyMs: number;
}

const MiB = 1024 * 1024;
/** Files from this size are fetched in parts by default. */
const AUTO_PARTS_FROM = 64 * MiB;
const AUTO_PARTS = 4;
const MIN_PART_BYTES = 64 * 1024;
/** How often the sidecar is saved while bytes arrive: a crash loses at most this much of each range. */
const SIDECAR_EVERY_MS = 250;
const MAX_RESTARTS = 3;

/** The download must start over from byte 0 (the file changed, or the server stopped honouring Range). */
class StartOver extends Error {
  constructor(
    message: string,
    readonly single = false,
  ) {
    super(message);
  }
}

const active = new Set<string>();

/**
 * Downloads one file, resumably and verified:
 *
 * - resumes from `partPath` when its sidecar matches the request (size, sha256, ETag), with
 *   `Range: bytes=<have>-`; a server that ignores Range (200) is followed from byte 0, a file that
 *   changed on the server (ETag, size) starts over;
 * - large files go in `parts` ranges at once, each written in place and tracked in the sidecar;
 * - retries connection failures, stalls, 5xx and 429 (honouring Retry-After) with backoff, each
 *   retry resuming from the bytes on disk; 401, 403, 404 and other 4xx fail at once (DownloadError);
 * - hashes the bytes on another thread as they land and checks the sha256 before renaming the part
 *   to `destPath` (a mismatch deletes the part: ChecksumMismatchError);
 * - checks the free disk space first (InsufficientDiskError).
 */
export async function downloadFile(req: DownloadRequest): Promise<DownloadResult> {
  const d = new Download(req);
  if (active.has(d.partPath)) {
    throw new RbeeError(`${req.partPath} is already being downloaded by this process`, {
      statusCode: 409,
      code: "download_in_progress",
    });
  }
  active.add(d.partPath);
  try {
    return await d.run();
  } finally {
    active.delete(d.partPath);
  }
}

function validate(req: DownloadRequest): { sha256: string | null; size: number | null } {
  const url = URL.canParse(req.url) ? new URL(req.url) : undefined;
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:"))
    throw new RbeeError(`cannot download '${req.url}': only http and https URLs are supported`, {
      statusCode: 400,
      code: "invalid_request",
      param: "url",
    });
  if (req.partPath === req.destPath)
    throw new RbeeError("partPath and destPath must differ", {
      statusCode: 400,
      code: "invalid_request",
      param: "partPath",
    });
  const sha256 = req.sha256?.toLowerCase() ?? null;
  if (sha256 !== null && !/^[0-9a-f]{64}$/.test(sha256))
    throw new RbeeError(`sha256 must be 64 hex digits, got '${req.sha256}'`, {
      statusCode: 400,
      code: "invalid_request",
      param: "sha256",
    });
  const size = req.size ?? null;
  if (size !== null && !(Number.isSafeInteger(size) && size >= 0))
    throw new RbeeError(`size must be a whole number of bytes, got ${size}`, {
      statusCode: 400,
      code: "invalid_request",
      param: "size",
    });
  if (req.parts !== undefined && !(Number.isInteger(req.parts) && req.parts >= 1))
    throw new RbeeError(`parts must be a positive whole number, got ${req.parts}`, {
      statusCode: 400,
      code: "invalid_request",
      param: "parts",
    });
  return { sha256, size };
}

/** The state of one downloadFile call. */
class Download {
  readonly req: DownloadRequest;
  readonly partPath: string;
  readonly #policy: RetryPolicy;
  readonly #stallMs: number;
  readonly #expected: { sha256: string | null; size: number | null };
  readonly #sidecar: PartStateFile;
  #state!: PartState;
  #fh: FileHandle | undefined;
  #hasher: PrefixHasher | undefined;
  #writers = new Set<FileWriter>();
  #fetchedDone = 0;
  #dirty = false;
  #restarts = 0;
  /** Bytes on disk from an earlier call that this one kept (0 once it had to start over). */
  #resumedFrom = 0;

  constructor(req: DownloadRequest) {
    this.#expected = validate(req);
    this.req = req;
    this.partPath = req.partPath;
    this.#policy = retryPolicy(req.retry);
    this.#stallMs = req.stallTimeoutMs ?? 30_000;
    this.#sidecar = new PartStateFile(req.partPath, () => this.#state);
  }

  get #onDisk(): number {
    return this.#state.ranges.reduce((n, r) => n + r.done, 0);
  }

  get #fetched(): number {
    let n = this.#fetchedDone;
    for (const w of this.#writers) n += w.received;
    return n;
  }

  async run(): Promise<DownloadResult> {
    const t0 = performance.now();
    const { req } = this;
    const signal = req.signal;
    signal?.throwIfAborted();
    await mkdir(dirname(this.partPath), { recursive: true });
    const existing = await this.#load();
    this.#resumedFrom = this.#onDisk;
    const meter = req.onProgress
      ? new ProgressMeter(
          () => ({ done: this.#onDisk, total: this.#state.size, fetched: this.#fetched }),
          req.onProgress,
        )
      : undefined;
    const saver = setInterval(() => {
      if (!this.#dirty) return;
      this.#dirty = false;
      this.#sidecar.save().catch(() => undefined);
    }, SIDECAR_EVERY_MS);
    saver.unref();
    // the sidecar stays with a part file: not when none was opened, nor once it was deleted
    let keepSidecar = false;
    try {
      if (this.#state.size !== null) await checkFreeSpace(dirname(this.partPath), this.#state.size - this.#onDisk);
      this.#fh = await open(this.partPath, existing ? "r+" : "w+");
      keepSidecar = true;
      if (this.#state.mode === "parts" && !existing) await this.#fh.truncate(this.#state.size ?? 0);
      await this.#sidecar.save();
      this.#hasher = new PrefixHasher(this.partPath);
      meter?.start();
      for (;;) {
        try {
          await this.#fetchAll();
          break;
        } catch (err) {
          if (!(err instanceof StartOver) || signal?.aborted) throw err;
          if (++this.#restarts > MAX_RESTARTS)
            throw new DownloadError(
              req.url,
              `downloading ${req.url} failed: ${err.message}, ${MAX_RESTARTS} times in a row`,
            );
          await this.#startOver(err.single);
        }
      }
      const size = this.#state.size ?? this.#onDisk;
      const tVerify = performance.now();
      const sha256 = await this.#hasher.digest(size);
      this.#hasher = undefined;
      const verifyMs = performance.now() - tVerify;
      await this.#fh.close();
      this.#fh = undefined;
      clearInterval(saver);
      if (this.#expected.sha256 !== null && sha256 !== this.#expected.sha256) {
        keepSidecar = false;
        await this.#discard();
        throw new ChecksumMismatchError(req.url, this.#expected.sha256, sha256, size);
      }
      const onDisk = (await stat(this.partPath)).size;
      if (onDisk !== size) {
        keepSidecar = false;
        await this.#discard();
        throw new DownloadError(
          req.url,
          `downloading ${req.url} went wrong: ${onDisk} bytes on disk, ${size} expected; it starts over next time`,
        );
      }
      await mkdir(dirname(req.destPath), { recursive: true });
      await moveFile(this.partPath, req.destPath);
      await this.#sidecar.remove();
      meter?.stop(true);
      return {
        path: req.destPath,
        size,
        sha256,
        fetchedBytes: this.#fetched,
        resumedFromBytes: this.#resumedFrom,
        ms: performance.now() - t0,
        verifyMs,
      };
    } catch (err) {
      clearInterval(saver);
      meter?.stop(false);
      this.#hasher?.cancel();
      await this.#fh?.close().catch(() => undefined);
      if (keepSidecar) await this.#sidecar.save().catch(() => undefined);
      if (signal?.aborted) throw signal.reason;
      throw await this.#final(err);
    }
  }

  /** Reads the part and its sidecar: true to resume them, false to start afresh (they are deleted). */
  async #load(): Promise<boolean> {
    const { req } = this;
    const saved = await readPartState(this.partPath);
    const info = await stat(this.partPath).catch(() => undefined);
    const exp = this.#expected;
    const differs = (a: string | number | null | undefined, b: string | number | null | undefined) =>
      a !== null && a !== undefined && b !== null && b !== undefined && a !== b;
    let resume =
      saved !== undefined &&
      info?.isFile() === true &&
      !differs(exp.size, saved.size) &&
      !differs(exp.sha256, saved.sha256) &&
      !differs(req.etag, saved.etag);
    if (resume && saved && info) {
      if (saved.mode === "single") {
        const r = saved.ranges[0]!;
        // written front to back: the file's own length is how far it got (the sidecar may lag)
        resume = saved.ranges.length === 1 && r.start === 0 && (r.end === null || info.size <= r.end);
        r.done = info.size;
      } else {
        resume = saved.size !== null && info.size === saved.size && coversExactly(saved.ranges, saved.size);
      }
    }
    if (resume && saved) {
      this.#state = {
        ...saved,
        size: exp.size ?? saved.size,
        sha256: exp.sha256 ?? saved.sha256,
        etag: req.etag ?? saved.etag,
      };
      return true;
    }
    await rm(this.partPath, { force: true });
    await rm(sidecarPath(this.partPath), { force: true });
    this.#state = {
      version: 1,
      url: req.url,
      size: exp.size,
      sha256: exp.sha256,
      etag: req.etag ?? null,
      ...this.#plan(exp.size),
      updatedAt: "",
    };
    return false;
  }

  /** How to split a file of `size` bytes. */
  #plan(size: number | null, single = false): Pick<PartState, "mode" | "ranges"> {
    const wanted = this.req.parts ?? (size !== null && size >= AUTO_PARTS_FROM ? AUTO_PARTS : 1);
    const parts = size === null || single ? 1 : Math.max(1, Math.min(wanted, Math.ceil(size / MIN_PART_BYTES)));
    if (parts === 1) return { mode: "single", ranges: [{ start: 0, end: size, done: 0 }] };
    const ranges: PartRange[] = [];
    const step = Math.ceil((size as number) / parts);
    for (let start = 0; start < (size as number); start += step)
      ranges.push({ start, end: Math.min(size as number, start + step), done: 0 });
    return { mode: "parts", ranges };
  }

  async #startOver(single: boolean): Promise<void> {
    this.#resumedFrom = 0;
    this.#hasher?.cancel();
    const size = this.#expected.size;
    Object.assign(this.#state, { size, etag: null, ...this.#plan(size, single) });
    await this.#fh!.truncate(0);
    if (this.#state.mode === "parts") await this.#fh!.truncate(size ?? 0);
    this.#hasher = new PrefixHasher(this.partPath);
    await this.#sidecar.save();
  }

  /** Deletes the part and its sidecar. */
  async #discard(): Promise<void> {
    await rm(this.partPath, { force: true });
    await this.#sidecar.remove();
  }

  /** Fetches every range that is not complete; in parts mode, the first one alone until the server shows it honours Range. */
  async #fetchAll(): Promise<void> {
    const inner = new AbortController();
    const signal = this.req.signal ? AbortSignal.any([this.req.signal, inner.signal]) : inner.signal;
    const pending = this.#state.ranges.filter((r) => !isComplete(r));
    const first = pending[0];
    if (!first) return;
    if (this.#state.mode === "single") {
      await this.#fetchRange(first, signal);
      return;
    }
    let confirmed!: () => void;
    let honoured = false;
    const ranged = new Promise<void>((resolve) => {
      confirmed = () => {
        honoured = true;
        resolve();
      };
    });
    const streams = [this.#fetchRange(first, signal, confirmed)];
    const firstSettled = streams[0]!.then(
      () => undefined,
      () => undefined,
    );
    await Promise.race([ranged, firstSettled]);
    // the others only once the server answered a range with 206 (not after a failure, nor a 200)
    if (honoured && this.#state.mode === "parts")
      for (const r of pending.slice(1)) streams.push(this.#fetchRange(r, signal));
    // the first failure stops the others; their bytes stay on disk
    let failure: unknown;
    await Promise.all(
      streams.map((s) =>
        s.catch((err: unknown) => {
          if (failure === undefined) {
            failure = err;
            inner.abort(err);
          }
        }),
      ),
    );
    if (failure !== undefined) throw failure;
  }

  /** One range to its end: attempts with backoff, each resuming from the bytes on disk. */
  async #fetchRange(range: PartRange, signal: AbortSignal, confirmed?: () => void): Promise<void> {
    let failures = 0;
    for (;;) {
      signal.throwIfAborted();
      if (isComplete(range)) return;
      const before = range.done;
      try {
        await this.#fetchOnce(range, signal, confirmed);
        if (isComplete(range)) return;
        if (range.done === before) throw new PrematureCloseError("the server ended the response without sending bytes");
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        if (err instanceof StartOver || !isTransient(err)) throw err;
        if (range.done > before) failures = 0;
        failures++;
        if (failures >= this.#policy.attempts) throw this.#exhausted(err, failures);
        const wait = backoffMs(this.#policy, failures, err instanceof HttpStatusFailure ? err.retryAfterMs : undefined);
        await sleep(wait, signal);
      }
    }
  }

  /** One request for the rest of a range, its body written in place. */
  async #fetchOnce(range: PartRange, signal: AbortSignal, confirmed?: () => void): Promise<void> {
    const state = this.#state;
    const from = range.start + range.done;
    const headers = { ...this.req.headers };
    if (state.mode === "parts" && range.end !== null) headers.range = `bytes=${from}-${range.end - 1}`;
    else if (from > 0) headers.range = `bytes=${from}-`;
    const { res, etag } = await openResponse(this.req.url, headers, { signal, stallTimeoutMs: this.#stallMs });
    try {
      if (etag !== null) {
        if (state.etag !== null && etag !== state.etag) {
          if (this.#onDisk > 0)
            throw new StartOver(`the file changed on the server (ETag ${state.etag} became ${etag})`);
        }
        if (state.etag !== etag) {
          state.etag = etag;
          this.#dirty = true;
        }
      }
      let total: number | null;
      if (res.status === 206) {
        const cr = parseContentRange(res.headers["content-range"]);
        if (!cr || cr.first !== from || (state.mode === "parts" && range.end !== null && cr.last >= range.end))
          throw new HttpProtocolError(
            `asked for bytes from ${from}${state.mode === "parts" ? ` to ${(range.end ?? 0) - 1}` : ""} but got Content-Range '${res.headers["content-range"] ?? ""}'`,
          );
        total = cr.total;
        confirmed?.();
      } else if (res.status === 200) {
        total = res.contentLength;
        if (state.mode === "parts") {
          if (range.start !== 0 || this.#onDisk > 0)
            throw new StartOver("the server stopped honouring Range requests", true);
          // the server does not do ranges: this one response is the whole file
          state.mode = "single";
          state.ranges = [range];
          range.end = state.size;
          await this.#fh!.truncate(0);
          this.#dirty = true;
          confirmed?.();
        } else if (from > 0) {
          // Range ignored: the body starts at byte 0 again
          range.done = 0;
          this.#resumedFrom = 0;
          await this.#fh!.truncate(0);
          this.#hasher?.cancel();
          this.#hasher = new PrefixHasher(this.partPath);
          this.#dirty = true;
        }
      } else if (res.status === 416) {
        const cr = parseContentRange(res.headers["content-range"]);
        res.close();
        const size = state.size ?? cr?.total ?? null;
        if (size !== null && from === size && range.start === 0 && state.mode === "single") {
          state.size = size;
          range.end = size;
          return;
        }
        throw new StartOver(`the server has ${cr?.total ?? "fewer"} bytes, fewer than the ${from} on disk`);
      } else {
        throw new HttpStatusFailure(res.status, undefined, undefined, `unexpected status ${res.status}`);
      }
      if (total !== null) await this.#learnSize(range, total);
      await this.#receive(range, res);
      if (state.mode === "single" && range.end === null) {
        // delimited by the close: the end of the body is the end of the file
        range.end = range.done;
        state.size = range.done;
        this.#dirty = true;
      }
    } catch (err) {
      res.close();
      throw err;
    }
  }

  async #learnSize(range: PartRange, total: number): Promise<void> {
    const state = this.#state;
    if (state.size === null) {
      state.size = total;
      if (state.mode === "single") range.end = total;
      this.#dirty = true;
      await checkFreeSpace(dirname(this.partPath), total - this.#onDisk);
    } else if (total !== state.size) {
      if (this.#expected.size !== null)
        throw new DownloadError(
          this.req.url,
          `downloading ${this.req.url} failed: the server has ${total} bytes, not the ${this.#expected.size} expected; the file may have changed — look it up again`,
        );
      throw new StartOver(`the file's size changed on the server (${state.size} became ${total} bytes)`);
    }
  }

  /** Streams a body into the part file at the range's position. */
  async #receive(range: PartRange, res: Http1Response): Promise<void> {
    const base = range.done;
    const writer = new FileWriter(this.#fh!, range.start + base, {
      onWritten: (total) => {
        range.done = base + total;
        this.#dirty = true;
        this.#hasher?.advance(contiguousPrefix(this.#state.ranges));
      },
      onError: (err) => res.close(err),
    });
    writer.onResume(() => res.resume());
    this.#writers.add(writer);
    try {
      await res.pipeTo(writer);
    } finally {
      // whatever arrived is written, also when the connection broke: the next try resumes after it
      try {
        await writer.flush();
      } finally {
        this.#writers.delete(writer);
        this.#fetchedDone += writer.received;
      }
    }
  }

  #exhausted(err: unknown, attempts: number): RbeeError {
    const { url } = this.req;
    const kept = `${formatBytes(this.#onDisk)} are kept in ${this.partPath}: run it again to resume`;
    if (err instanceof HttpStatusFailure)
      return DownloadError.fromStatus(url, err.status, {
        serverMessage: `${err.serverMessage ?? ""} (tried ${attempts} times; ${kept})`.trim(),
        hubErrorCode: err.hubErrorCode,
        retryAfterSeconds: err.retryAfterMs !== undefined ? Math.ceil(err.retryAfterMs / 1000) : undefined,
        bytesOnDisk: this.#onDisk,
      });
    return new DownloadError(
      url,
      `downloading ${url} failed after ${attempts} tries: ${describeFailure(err)}; ${kept}`,
      {
        cause: err,
        bytesOnDisk: this.#onDisk,
      },
    );
  }

  /** Turns what stopped the download into the error its caller acts on. */
  async #final(err: unknown): Promise<RbeeError> {
    const { url } = this.req;
    if (err instanceof RbeeError) return err;
    if (err instanceof HttpStatusFailure)
      return DownloadError.fromStatus(url, err.status, {
        serverMessage: err.serverMessage,
        hubErrorCode: err.hubErrorCode,
        bytesOnDisk: this.#state ? this.#onDisk : undefined,
      });
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    if (code === "ENOSPC" || code === "EDQUOT") {
      const dir = dirname(this.partPath);
      const need = (this.#state?.size ?? this.#onDisk) - this.#onDisk;
      return new InsufficientDiskError(dir, Math.max(need, 1), await freeBytes(dir).catch(() => 0));
    }
    if (isTransient(err) || err instanceof HttpProtocolError)
      return new DownloadError(url, `downloading ${url} failed: ${describeFailure(err)}`, { cause: err });
    return new RbeeError(`downloading ${url} to ${this.partPath} failed: ${describeFailure(err)}`, {
      statusCode: 500,
      code: "download_failed",
      cause: err,
    });
  }
}

function isComplete(r: PartRange): boolean {
  return r.end !== null && r.done >= r.end - r.start;
}

/** The bytes from 0 that are all on disk. */
function contiguousPrefix(ranges: readonly PartRange[]): number {
  let prefix = 0;
  for (const r of ranges) {
    prefix = r.start + r.done;
    if (!isComplete(r)) break;
  }
  return prefix;
}

/** Whether ranges tile [0, size) in order. */
function coversExactly(ranges: readonly PartRange[], size: number): boolean {
  let at = 0;
  for (const r of ranges) {
    if (r.start !== at || r.end === null) return false;
    at = r.end;
  }
  return at === size;
}

/** `bytes 0-99/1234` → first 0, last 99, total 1234; `bytes *\/1234` → total only. */
function parseContentRange(v: string | undefined): { first: number; last: number; total: number | null } | undefined {
  if (!v) return undefined;
  const m = /^bytes\s+(?:(\d+)-(\d+)|\*)\/(\d+|\*)$/i.exec(v.trim());
  if (!m) return undefined;
  const total = m[3] === "*" ? null : Number(m[3]);
  if (m[1] === undefined) return { first: -1, last: -1, total };
  return { first: Number(m[1]), last: Number(m[2]), total };
}

/** Renames, or copies when the part and the destination are on different filesystems. */
async function moveFile(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EXDEV") throw err;
    const tmp = `${to}.${process.pid}.tmp`;
    await copyFile(from, tmp);
    await rename(tmp, to);
    await rm(from, { force: true });
  }
}
