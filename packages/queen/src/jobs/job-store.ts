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

/**
 * One job: it runs from its creation, and every event it emits is kept, so a client that connects
 * late or reconnects (Last-Event-ID) sees all of them. It ends with exactly one of done, error or
 * cancelled.
 */
export class Job {
  readonly id: string;
  readonly operation: JobOperation;
  readonly createdAt = Date.now();
  readonly events: JobEvent[] = [];
  finishedAt: number | undefined;
  #abort = new AbortController();
  #listeners = new Set<(e: JobEvent) => void>();

  constructor(id: string, operation: JobOperation) {
    this.id = id;
    this.operation = operation;
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
    if (isTerminalJobEvent(event)) this.finishedAt = event.at;
    for (const l of this.#listeners) l(event);
    if (this.done) this.#listeners.clear();
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
   * seen by every key holder): only their count is shown.
   */
  summary(): JobSummary {
    const op = this.operation;
    const operation =
      op.type === "infer"
        ? {
            ...op,
            prompt: undefined,
            messages: undefined,
            message_count: (op.messages?.length ?? 0) + (op.prompt === undefined ? 0 : 1),
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

/** The queen's jobs, in memory. Finished jobs are kept for `retainMs` (and at most `maxJobs`). */
export class JobStore {
  #jobs = new Map<string, Job>();
  #retainMs: number;
  #maxJobs: number;

  constructor(options: { retainMs?: number; maxJobs?: number } = {}) {
    this.#retainMs = options.retainMs ?? 15 * 60_000;
    this.#maxJobs = options.maxJobs ?? 1000;
  }

  get size(): number {
    return this.#jobs.size;
  }

  /** Creates a job and starts it at once. */
  start(operation: JobOperation, run: JobRunner): Job {
    this.#prune();
    const job = new Job(`job_${randomBytes(8).toString("hex")}`, operation);
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
        `no job '${id}' (jobs are kept for ${Math.round(this.#retainMs / 60_000)} minutes after they end)`,
        "job_not_found",
      );
    return job;
  }

  #prune(now = Date.now()): void {
    for (const [id, job] of this.#jobs) {
      if (job.finishedAt !== undefined && now - job.finishedAt > this.#retainMs) this.#jobs.delete(id);
    }
    if (this.#jobs.size < this.#maxJobs) return;
    for (const [id, job] of this.#jobs) {
      if (job.done) this.#jobs.delete(id);
      if (this.#jobs.size < this.#maxJobs) break;
    }
  }
}
