import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SafeId, WorkerGroupSpawn } from "@rbee/contract";
import type { Logger } from "@rbee/server-kit";
import { z } from "zod";
import type { WorkerSpec } from "./managed-worker.js";

/**
 * What a hive remembers of a running worker in `<cache>/run/workers/<id>.json`, so that a hive
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
    /** A worker group's member: its group as spawned, and a shard's RPC port. */
    group: WorkerGroupSpawn.extend({ rpc_port: z.number().int().min(1).max(65535).optional() }).optional(),
    /** Its configuration as the hive checked it (a package type's RBEE_WORKER_CONFIG). */
    config: z.record(z.string(), z.unknown()).optional(),
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

/**
 * The hive's worker records (`<cache>/run/workers/<id>.json`): written when a worker runs (or
 * changes), removed when it is gone. Records an older hive kept in `<cache>/workers/<id>/metadata.json`
 * (where the worker catalog lives now) are moved here when they are first loaded.
 */
export class WorkerRecords {
  constructor(
    private readonly dir: string,
    private readonly log: Logger,
    /** `<cache>/workers`: where hives before the worker catalog kept their records. */
    private readonly legacyDir?: string,
  ) {}

  #file(id: string): string {
    return join(this.dir, `${id}.json`);
  }

  /** Writes (atomically) the record of a running worker. A failure is logged: the worker runs on. */
  save(w: SavedWorker): void {
    const now = new Date().toISOString();
    const dir = this.dir;
    const file = this.#file(w.spec.workerId);
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
        group: s.group,
        config: s.config,
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
    rmSync(this.#file(id), { force: true });
  }

  /**
   * Moves the records of an older hive's layout (`<cache>/workers/<id>/metadata.json`, told apart
   * from the worker catalog's entries by their `worker` field) to `<cache>/run/workers/`.
   */
  #migrate(): void {
    if (this.legacyDir === undefined || !existsSync(this.legacyDir)) return;
    for (const name of readdirSync(this.legacyDir)) {
      const old = join(this.legacyDir, name, "metadata.json");
      let body: unknown;
      try {
        body = JSON.parse(readFileSync(old, "utf8"));
      } catch {
        continue;
      }
      if (typeof body !== "object" || body === null || !("worker" in body) || !SafeId.safeParse(name).success) continue;
      try {
        mkdirSync(this.dir, { recursive: true });
        renameSync(old, this.#file(name));
        rmSync(join(this.legacyDir, name), { recursive: true, force: true });
        this.log.info({ worker_id: name, to: this.#file(name) }, "moved a worker record out of the worker catalog");
      } catch (err) {
        this.log.warn({ file: old, err: (err as Error).message }, "could not move an old worker record");
      }
    }
  }

  /** Every readable record; unreadable ones are logged and removed. */
  load(): SavedWorker[] {
    this.#migrate();
    let names: string[];
    try {
      names = readdirSync(this.dir).filter((n) => n.endsWith(".json"));
    } catch {
      return [];
    }
    const out: SavedWorker[] = [];
    for (const name of names) {
      const id = name.slice(0, -".json".length);
      const file = this.#file(id);
      let record: WorkerRecord;
      try {
        record = WorkerRecord.parse(JSON.parse(readFileSync(file, "utf8")));
      } catch (err) {
        this.log.warn({ file, err: (err as Error).message }, "ignoring an unreadable worker record");
        rmSync(file, { force: true });
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
          group: r.group,
          config: r.config,
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
