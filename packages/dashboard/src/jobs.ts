import type { JobEvent, JobOperation } from "@rbee/contract";
import { ApiError, api, parseJson, readSse } from "./api";

export interface JobCreated {
  job_id: string;
  sse_url: string;
}

export const isTerminal = (e: JobEvent): boolean => e.type === "done" || e.type === "error" || e.type === "cancelled";

/** Starts a job (`POST /v1/jobs`). */
export function createJob(operation: JobOperation): Promise<JobCreated> {
  return api<JobCreated>("/v1/jobs", { method: "POST", body: { operation } });
}

/** Cancels a job (`DELETE /v1/jobs/{id}`). */
export function cancelJob(id: string): Promise<unknown> {
  return api(`/v1/jobs/${encodeURIComponent(id)}`, { method: "DELETE" });
}

/**
 * Follows a job's events until its terminal one, reconnecting with Last-Event-ID when the
 * connection drops (the queen keeps every event, so nothing is missed or repeated).
 */
export async function followJob(
  id: string,
  onEvent: (e: JobEvent) => void,
  signal?: AbortSignal,
): Promise<JobEvent | undefined> {
  let last: JobEvent | undefined;
  let lastSeq: number | undefined;
  for (let attempt = 0; ; attempt++) {
    try {
      await readSse(
        `/v1/jobs/${encodeURIComponent(id)}/stream`,
        (m) => {
          const e = parseJson<JobEvent>(m.data);
          if (!e || typeof e.seq !== "number" || (lastSeq !== undefined && e.seq <= lastSeq)) return;
          lastSeq = e.seq;
          last = e;
          onEvent(e);
        },
        { signal, lastEventId: lastSeq === undefined ? undefined : String(lastSeq) },
      );
    } catch (err) {
      if (signal?.aborted) return last;
      if (err instanceof ApiError && err.status !== 0) throw err;
    }
    if (last && isTerminal(last)) return last;
    if (signal?.aborted) return last;
    await new Promise((r) => setTimeout(r, Math.min(5000, 500 * 2 ** attempt)));
  }
}

/** A job's one-line summary, for lists. */
export function describeOperation(op: JobOperation): string {
  switch (op.type) {
    case "infer":
      return `infer with ${op.model}`;
    case "image":
      return `image with ${op.model}`;
    case "spawn_worker":
      return `spawn ${op.worker_type ?? "a"} worker for ${op.model}${op.hive ? ` on ${op.hive}` : ""}${op.replicas ? ` ×${op.replicas}` : ""}`;
    case "stop_worker":
      return `stop worker ${op.worker_id}`;
    case "download_model":
      return `download ${op.model}${op.hive ? ` to ${op.hive}` : ""}`;
    case "model_info":
      return `fit check of ${op.model}`;
    case "remove_model":
      return `remove ${op.model}`;
    case "install_worker_package":
      return `install worker package ${op.id}${op.version ? `@${op.version}` : ""}${op.hive ? ` on ${op.hive}` : ""}`;
    case "update_worker_package":
      return `update ${op.id ? `worker package ${op.id}` : "worker packages"}${op.hive ? ` on ${op.hive}` : ""}`;
    case "uninstall_worker_package":
      return `uninstall worker package ${op.id}${op.hive ? ` from ${op.hive}` : ""}`;
  }
}
