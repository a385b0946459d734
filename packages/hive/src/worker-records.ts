import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SafeId } from "@rbee/contract";
import type { Logger } from "@rbee/server-kit";
import { z } from "zod";
import type { WorkerSpec } from "./managed-worker.js";

/**
 * What a hive remembers of a running worker in `<cache>/workers/<id>/metadata.json`, so that a hive
 * started after a crash (or a SIGKILL) takes its workers back at once, with what only it knew: the
 * model file (to restart the worker if it crashes later) and the keep-alive the queen asked for.
 */
export const WorkerRecord = z.object({
  worker: z.object({
    id: SafeId,
    worker_type: z.string(),
    model_id: z.string(),
    model_path: z.string().optional(),
    device: z.string(),
    ctx_size: z.number().int().positive().optional(),
    parallel: z.number().int().positive().optional(),
    threads: z.number().int().positive().optional(),
    max_queue: z.number().int().nonnegative().optional(),
    keep_alive_ms: z.number().nonnegative().nullable().optional(),
    memory_bytes: z.number().int().nonnegative().optional(),
    ready_timeout_ms: z.number().int().positive().optional(),
    port: z.number().int().min(1).max(65535),
    pid: z.number().int().positive().nullable(),
    /** Where the hive reaches it on this machine. */
    url: z.string(),
    restarts: z.number().int().nonnegative(),
    started_at: z.string(),
  }),
  created_at: z.string(),
  updated_at: z.string(),
});
export type WorkerRecord = z.infer<typeof WorkerRecord>;

/** One remembered worker, as read back. */
export interface SavedWorker {
  spec: WorkerSpec;
  port: number;
  pid: number | null;
  url: string;
  restarts: number;
  startedAt: Date;
}

/** The hive's worker records: written when a worker runs (or changes), removed when it is gone. */
export class WorkerRecords {
  constructor(
    private readonly dir: string,
    private readonly log: Logger,
  ) {}

  /** Writes (atomically) the record of a running worker. A failure is logged: the worker runs on. */
  save(w: SavedWorker): void {
    const now = new Date().toISOString();
    const dir = join(this.dir, w.spec.workerId);
    const file = join(dir, "metadata.json");
    let createdAt = now;
    try {
      createdAt = WorkerRecord.parse(JSON.parse(readFileSync(file, "utf8"))).created_at;
    } catch {
      // a first record
    }
    const s = w.spec;
    const record: WorkerRecord = {
      worker: {
        id: s.workerId,
        worker_type: s.workerType,
        model_id: s.modelId,
        model_path: s.modelPath,
        device: s.device,
        ctx_size: s.ctxSize,
        parallel: s.parallel,
        threads: s.threads,
        max_queue: s.maxQueue,
        keep_alive_ms: s.keepAliveMs,
        memory_bytes: s.memoryBytes,
        ready_timeout_ms: s.readyTimeoutMs,
        port: w.port,
        pid: w.pid,
        url: w.url,
        restarts: w.restarts,
        started_at: w.startedAt.toISOString(),
      },
      created_at: createdAt,
      updated_at: now,
    };
    try {
      mkdirSync(dir, { recursive: true });
      writeFileSync(`${file}.tmp`, `${JSON.stringify(record, null, 2)}\n`);
      renameSync(`${file}.tmp`, file);
    } catch (err) {
      this.log.warn({ worker_id: s.workerId, err: (err as Error).message }, "could not write the worker's record");
    }
  }

  remove(id: string): void {
    if (!SafeId.safeParse(id).success) return;
    rmSync(join(this.dir, id), { recursive: true, force: true });
  }

  /** Every readable record; unreadable ones are logged and removed. */
  load(): SavedWorker[] {
    let ids: string[];
    try {
      ids = readdirSync(this.dir);
    } catch {
      return [];
    }
    const out: SavedWorker[] = [];
    for (const id of ids) {
      const file = join(this.dir, id, "metadata.json");
      let record: WorkerRecord;
      try {
        record = WorkerRecord.parse(JSON.parse(readFileSync(file, "utf8")));
      } catch (err) {
        this.log.warn({ file, err: (err as Error).message }, "ignoring an unreadable worker record");
        this.remove(id);
        continue;
      }
      const r = record.worker;
      out.push({
        spec: {
          workerId: r.id,
          workerType: r.worker_type,
          modelId: r.model_id,
          modelPath: r.model_path,
          device: r.device,
          ctxSize: r.ctx_size,
          parallel: r.parallel,
          threads: r.threads,
          maxQueue: r.max_queue,
          keepAliveMs: r.keep_alive_ms,
          memoryBytes: r.memory_bytes,
          readyTimeoutMs: r.ready_timeout_ms,
        },
        port: r.port,
        pid: r.pid,
        url: r.url,
        restarts: r.restarts,
        startedAt: new Date(r.started_at),
      });
    }
    return out;
  }
}
