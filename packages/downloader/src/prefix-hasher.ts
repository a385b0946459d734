import { Worker } from "node:worker_threads";

/**
 * The worker's code, run with `eval` so it needs no file beside the compiled module. It loads its
 * modules with import(), which works whether the process treats eval code as CommonJS or as an
 * ES module (`--input-type=module` is inherited by workers).
 * Each job hashes one file from byte 0 as far as it is told the bytes are on disk, 1 MiB at a time,
 * jobs taking turns; `finish` hashes up to the final size and answers with the digest.
 */
const WORKER_SOURCE = `
Promise.all([import("node:worker_threads"), import("node:fs"), import("node:crypto")]).then(([wt, fs, crypto]) => {
const { parentPort } = wt;
const { openSync, readSync, closeSync } = fs;
const { createHash } = crypto;
const jobs = new Map();
const buf = Buffer.allocUnsafe(1024 * 1024);
let scheduled = false;
function close(j) { if (j.fd !== null) { try { closeSync(j.fd); } catch {} j.fd = null; } }
function schedule() { if (!scheduled) { scheduled = true; setImmediate(pump); } }
function pump() {
  scheduled = false;
  let more = false;
  for (const [id, j] of jobs) {
    try {
      if (j.pos < j.target) {
        if (j.fd === null) j.fd = openSync(j.path, "r");
        const n = readSync(j.fd, buf, 0, Math.min(buf.length, j.target - j.pos), j.pos);
        if (n === 0) throw new Error(j.path + " ends at byte " + j.pos + " but " + j.target + " were expected");
        j.hash.update(buf.subarray(0, n));
        j.pos += n;
      }
      if (j.finish !== null && j.pos >= j.finish) {
        close(j);
        jobs.delete(id);
        parentPort.postMessage({ type: "digest", id, hex: j.hash.digest("hex"), bytes: j.pos });
      } else if (j.pos < j.target) more = true;
    } catch (e) {
      close(j);
      jobs.delete(id);
      parentPort.postMessage({ type: "error", id, message: String((e && e.message) || e) });
    }
  }
  if (more) schedule();
}
parentPort.on("message", (m) => {
  if (m.type === "start") {
    jobs.set(m.id, { path: m.path, fd: null, hash: createHash("sha256"), pos: 0, target: 0, finish: null });
  } else {
    const j = jobs.get(m.id);
    if (!j) return;
    if (m.type === "advance") j.target = Math.max(j.target, m.upTo);
    else if (m.type === "finish") { j.target = m.size; j.finish = m.size; }
    else if (m.type === "cancel") { close(j); jobs.delete(m.id); return; }
  }
  schedule();
});
});
`;

type Reply =
  | { type: "digest"; id: number; hex: string; bytes: number }
  | { type: "error"; id: number; message: string };

interface Waiter {
  resolve: (hex: string) => void;
  reject: (err: Error) => void;
}

/** One worker thread for every download of the process; referenced only while it has jobs. */
class HashWorker {
  readonly worker: Worker;
  readonly waiters = new Map<number, Waiter>();
  jobs = 0;
  /** Why the worker is gone, once it is. */
  dead: Error | undefined;

  constructor() {
    this.worker = new Worker(WORKER_SOURCE, { eval: true });
    this.worker.unref();
    this.worker.on("message", (m: Reply) => {
      const w = this.waiters.get(m.id);
      if (!w) return;
      this.waiters.delete(m.id);
      if (m.type === "digest") w.resolve(m.hex);
      else w.reject(new Error(`hashing failed: ${m.message}`));
    });
    this.worker.on("error", (err) => this.#die(err));
    this.worker.on("exit", (code) => this.#die(new Error(`the hash worker exited with code ${code}`)));
  }

  open(): void {
    if (this.jobs++ === 0) this.worker.ref();
  }

  closeJob(): void {
    if (--this.jobs === 0) this.worker.unref();
  }

  #die(err: Error): void {
    this.dead ??= err;
    if (shared === this) shared = undefined;
    for (const w of this.waiters.values()) w.reject(err);
    this.waiters.clear();
  }
}

let shared: HashWorker | undefined;
let nextId = 1;

/**
 * The sha256 of a file that is being written, computed on another thread while it downloads:
 * `advance(n)` says bytes [0, n) are on disk, `digest(size)` finishes. The file is read back from
 * the page cache, which costs far less than hashing on the thread that moves the bytes.
 */
export class PrefixHasher {
  readonly #worker: HashWorker;
  readonly #id = nextId++;
  #told = 0;
  #closed = false;

  constructor(path: string) {
    shared ??= new HashWorker();
    this.#worker = shared;
    this.#worker.open();
    this.#worker.worker.postMessage({ type: "start", id: this.#id, path });
  }

  /** Bytes [0, upTo) are written; the worker may hash them. Cheap to call often. */
  advance(upTo: number, minStep = 4 * 1024 * 1024): void {
    if (this.#closed || upTo < this.#told + minStep) return;
    this.#told = upTo;
    this.#worker.worker.postMessage({ type: "advance", id: this.#id, upTo });
  }

  /** The lowercase hex sha256 of bytes [0, size). */
  digest(size: number): Promise<string> {
    if (this.#closed) return Promise.reject(new Error("the hasher was closed"));
    this.#closed = true;
    if (this.#worker.dead) {
      this.#worker.closeJob();
      return Promise.reject(this.#worker.dead);
    }
    const p = new Promise<string>((resolve, reject) => this.#worker.waiters.set(this.#id, { resolve, reject }));
    this.#worker.worker.postMessage({ type: "finish", id: this.#id, size });
    return p.finally(() => this.#worker.closeJob());
  }

  /** Stops the job (the download failed or starts over). */
  cancel(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#worker.worker.postMessage({ type: "cancel", id: this.#id });
    this.#worker.closeJob();
  }
}
