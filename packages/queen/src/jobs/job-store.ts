import { randomBytes } from "node:crypto";
import {
  isTerminalJobEvent,
  type JobEvent,
  type JobOperation,
  NotFoundError,
  RbeeError,
  toRbeeError,
} from "@rbee/contract";

type EventBody = JobEvent extends infer E ? (E extends JobEvent ? Omit<E, "seq" | "at"> : never) : never;

/** What a job's code gets: a way to speak, and a signal that aborts when the job is cancelled. */
export interface JobContext {
  readonly jobId: string;
  readonly signal: AbortSignal;
  narrate(source: string, message: string, level?: "info" | "warn" | "error"): void;
  progress(done: number, total: number | null, unit: string, label?: string, rate?: number): void;
  token(text: string, index: number): void;
  data(data: unknown): void;
}

export type JobRunner = (ctx: JobContext) => Promise<unknown>;

/** Fields of an operation that carry what the user sent (prompts, chats, schemas): dropped once the job ends. */
const BODY_FIELDS = ["prompt", "messages", "json_schema"] as const;

/** An operation without its prompt, chat and schema: what a finished job keeps (their sizes stay, in characters). */
function withoutBody(op: JobOperation): JobOperation {
  const kept: Record<string, unknown> = { ...op };
  for (const field of BODY_FIELDS) {
    const value = kept[field];
    if (value === undefined) continue;
    delete kept[field];
    kept[`${field}_chars`] = typeof value === "string" ? value.length : JSON.stringify(value).length;
  }
  return kept as JobOperation;
}

/** Roughly what an event holds in memory: its JSON size (text dominates), plus a fixed overhead. */
function sizeOf(e: JobEvent): number {
  if (e.type === "token") return 64 + 2 * e.text.length;
  return 64 + 2 * (JSON.stringify(e)?.length ?? 0);
}

/**
 * One job: it runs from its creation, and every event it emits is kept, so a client that connects
 * late or reconnects (Last-Event-ID) sees all of them. It ends with exactly one of done, error or
 * cancelled. Once it ends it forgets its request's prompt, chat and schema (only their sizes stay).
 */
export class Job {
  readonly id: string;
  readonly createdAt = Date.now();
  readonly events: JobEvent[] = [];
  finishedAt: number | undefined;
  #operation: JobOperation;
  #abort = new AbortController();
  #listeners = new Set<(e: JobEvent) => void>();
  #eventBytes = 0;
  /** An infer job's messages (a prompt counts as one), kept for its summary after the body is dropped. */
  #messageCount: number;
  #onDone: ((job: Job) => void) | undefined;

  constructor(id: string, operation: JobOperation, onDone?: (job: Job) => void) {
    this.id = id;
    this.#operation = operation;
    this.#onDone = onDone;
    this.#messageCount =
      operation.type === "infer" ? (operation.messages?.length ?? 0) + (operation.prompt === undefined ? 0 : 1) : 0;
  }

  /** The operation; without its prompt, chat and schema once the job has ended. */
  get operation(): JobOperation {
    return this.#operation;
  }

  /** Roughly how much memory the job's events hold (bytes). */
  get eventBytes(): number {
    return this.#eventBytes;
  }

  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  get done(): boolean {
    return this.finishedAt !== undefined;
  }

  get status(): "running" | "done" | "error" | "cancelled" {
    const last = this.events.at(-1);
    if (!this.done || !last) return "running";
    return last.type as "done" | "error" | "cancelled";
  }

  emit(body: EventBody): void {
    if (this.done) return;
    const event = { ...body, seq: this.events.length, at: Date.now() } as JobEvent;
    this.events.push(event);
    this.#eventBytes += sizeOf(event);
    if (isTerminalJobEvent(event)) this.finishedAt = event.at;
    for (const l of this.#listeners) l(event);
    if (this.done) {
      this.#listeners.clear();
      this.#operation = withoutBody(this.#operation);
      this.#onDone?.(this);
    }
  }

  /** Events after `afterSeq`, then live ones; the listener is dropped after the terminal event. */
  subscribe(listener: (e: JobEvent) => void, afterSeq = -1): () => void {
    for (const e of this.events) if (e.seq > afterSeq) listener(e);
    if (this.done) return () => {};
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * The job as `GET /v1/jobs` lists it. An infer job's prompt and messages are left out (a list is
   * seen by every key holder): only their count is shown; an image job's prompts are left out too.
   */
  summary(): JobSummary {
    const op = this.operation;
    const operation =
      op.type === "image"
        ? { ...op, prompt: undefined, negative_prompt: undefined }
        : op.type === "infer"
          ? {
              ...op,
              prompt: undefined,
              messages: undefined,
              message_count: this.#messageCount,
            }
          : op;
    return {
      job_id: this.id,
      status: this.status,
      operation,
      created_at: this.createdAt,
      finished_at: this.finishedAt ?? null,
      events: this.events.length,
    };
  }

  cancel(reason = "cancelled by the client"): void {
    if (this.done) return;
    this.#abort.abort(new RbeeError(reason, { statusCode: 499, code: "cancelled" }));
    this.emit({ type: "cancelled", reason });
  }
}

export interface JobSummary {
  job_id: string;
  status: Job["status"];
  operation: Record<string, unknown>;
  created_at: number;
  finished_at: number | null;
  events: number;
}

/** Default cap on what finished jobs hold in memory (their events: tokens, results, messages). */
export const DEFAULT_JOBS_MAX_BYTES = 64 * 1024 * 1024;

/**
 * The queen's jobs, in memory. A finished job forgets its prompt at once, and is kept (with its
 * events, for clients that connect late) for `retainMs`, while there are at most `maxJobs` and
 * while finished jobs hold at most `maxBytes` together; the oldest finished go first.
 */
export class JobStore {
  #jobs = new Map<string, Job>();
  #retainMs: number;
  #maxJobs: number;
  #maxBytes: number;
  #finishedBytes = 0;

  constructor(options: { retainMs?: number; maxJobs?: number; maxBytes?: number } = {}) {
    this.#retainMs = options.retainMs ?? 15 * 60_000;
    this.#maxJobs = options.maxJobs ?? 1000;
    this.#maxBytes = options.maxBytes ?? DEFAULT_JOBS_MAX_BYTES;
  }

  get size(): number {
    return this.#jobs.size;
  }

  /** Roughly what the finished jobs kept hold in memory (bytes); at most maxBytes after each job ends. */
  get finishedBytes(): number {
    return this.#finishedBytes;
  }

  /** Creates a job and starts it at once. */
  start(operation: JobOperation, run: JobRunner): Job {
    this.#prune();
    const job = new Job(`job_${randomBytes(8).toString("hex")}`, operation, (done) => {
      this.#finishedBytes += done.eventBytes;
      this.#prune();
    });
    this.#jobs.set(job.id, job);
    const ctx: JobContext = {
      jobId: job.id,
      signal: job.signal,
      narrate: (source, message, level) =>
        job.emit({ type: "narration", source, message, ...(level ? { level } : {}) }),
      progress: (done, total, unit, label, rate) =>
        job.emit({
          type: "progress",
          done,
          total,
          unit,
          ...(label ? { label } : {}),
          ...(rate !== undefined ? { rate } : {}),
        }),
      token: (text, index) => job.emit({ type: "token", text, index }),
      data: (data) => job.emit({ type: "data", data }),
    };
    void Promise.resolve()
      .then(() => run(ctx))
      .then(
        (result) => job.emit({ type: "done", result }),
        (err: unknown) => {
          if (job.signal.aborted) return; // cancelled already said so
          const e = toRbeeError(err);
          job.emit({ type: "error", code: e.code, message: e.message });
        },
      );
    return job;
  }

  /** Every job kept, newest first. */
  list(): Job[] {
    this.#prune();
    return [...this.#jobs.values()].reverse();
  }

  get(id: string): Job {
    const job = this.#jobs.get(id);
    if (!job)
      throw new NotFoundError(
        `no job '${id}' (jobs are kept for up to ${Math.round(this.#retainMs / 60_000)} minutes after they end, fewer when many finished jobs hold more than ${Math.round(this.#maxBytes / 2 ** 20)} MiB together)`,
        "job_not_found",
      );
    return job;
  }

  #prune(now = Date.now()): void {
    for (const job of this.#jobs.values()) {
      if (job.finishedAt !== undefined && now - job.finishedAt > this.#retainMs) this.#drop(job);
    }
    // the oldest finished jobs go first, until both caps hold
    for (const job of this.#jobs.values()) {
      if (this.#jobs.size < this.#maxJobs && this.#finishedBytes <= this.#maxBytes) break;
      if (job.done) this.#drop(job);
    }
  }

  #drop(job: Job): void {
    if (this.#jobs.delete(job.id) && job.done) this.#finishedBytes -= job.eventBytes;
  }
}
