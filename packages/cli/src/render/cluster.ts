import type { ClusterEvent, ClusterSnapshot, ClusterWorker } from "@rbee/contract";
import { formatBytes, formatDuration } from "./format.js";
import { renderTable } from "./table.js";

/** "0/4" requests in flight of the worker's parallel slots. */
function load(w: ClusterWorker): string {
  return `${w.in_flight}/${w.slots}`;
}

/** Tokens per second as a table cell: "-" for a worker that has not generated yet. */
function rate(tps: number): string {
  if (!(tps > 0)) return "-";
  return tps >= 100 ? String(Math.round(tps)) : tps.toFixed(1);
}

/** How long it has been idle, and how long it may be: "12s / 5m 0s", "busy / forever". */
function idle(w: ClusterWorker): string {
  const now = w.in_flight > 0 || w.status === "Busy" ? "busy" : formatDuration(w.idle_ms);
  return `${now} / ${formatDuration(w.keep_alive_ms)}`;
}

/** Why each Failed worker failed, one line each: its hive gave up restarting it. */
function failures(workers: readonly ClusterWorker[]): string[] {
  return workers
    .filter((w) => w.status === "Failed")
    .map(
      (w) =>
        `worker ${w.worker_id} failed: ${w.last_exit?.reason ?? "reason unknown"} (restarted ${w.restarts} times, then given up); remove it with \`rbee worker stop ${w.worker_id}\``,
    );
}

/** The workers as a table (shared by `rbee status` and `rbee worker ls`), then why any failed. */
export function renderWorkers(workers: readonly ClusterWorker[]): string {
  if (workers.length === 0) {
    return "no workers: they start on the first request for a model, or with `rbee worker spawn -m <model>`";
  }
  const table = renderTable(
    [
      { header: "id" },
      { header: "model" },
      { header: "hive" },
      { header: "device" },
      { header: "status" },
      { header: "load", align: "right" },
      { header: "tok/s", align: "right" },
      { header: "requests", align: "right" },
      { header: "idle / keep-alive" },
    ],
    workers.map((w) => [
      w.worker_id,
      w.model,
      w.hive_id,
      w.device,
      w.draining ? `${w.status} (draining)` : w.routable ? w.status : `${w.status} (unroutable)`,
      load(w),
      rate(w.tokens_per_second),
      String(w.requests_total),
      idle(w),
    ]),
  );
  return [table, ...failures(workers)].join("\n");
}

/** `rbee status`: the queen, then hives, devices and workers, each as a table. */
export function renderCluster(c: ClusterSnapshot, now = Date.now()): string {
  const started = Date.parse(c.queen.started_at);
  const uptime = Number.isFinite(started) ? `, up ${formatDuration(now - started)}` : "";
  const parts = [`queen ${c.queen.url} (version ${c.queen.version}${uptime})`];
  if (c.hives.length === 0) {
    parts.push("no hives: start this machine's with `rbee hive start` (or `rbee up`)");
  } else {
    parts.push(
      renderTable(
        [
          { header: "hive" },
          { header: "state" },
          { header: "url" },
          { header: "version" },
          { header: "last seen", align: "right" },
        ],
        c.hives.map((h) => [h.id, h.state, h.url, h.version, `${formatDuration(h.last_seen_ms)} ago`]),
      ),
    );
    const devices = c.hives.flatMap((h) => h.devices.map((d) => ({ hive: h.id, d })));
    if (devices.length > 0) {
      parts.push(
        renderTable(
          [
            { header: "hive" },
            { header: "device" },
            { header: "name" },
            { header: "free", align: "right" },
            { header: "total", align: "right" },
          ],
          devices.map(({ hive, d }) => [
            hive,
            d.simulated ? `${d.id} (simulated)` : d.id,
            d.cores ? `${d.name} (${d.cores} cores)` : d.name,
            formatBytes(d.memory_free),
            formatBytes(d.memory_total),
          ]),
        ),
      );
    }
  }
  parts.push(renderWorkers(c.workers));
  const minimums = c.minimums ?? [];
  if (minimums.length > 0) {
    const kept = minimums.map((m) => `${m.model} ${m.running}/${m.replicas}${m.policy ? ` (${m.policy})` : ""}`);
    parts.push(`kept at a minimum of workers (running/minimum): ${kept.join(", ")}`);
  }
  return parts.join("\n\n");
}

function clock(at: number): string {
  return new Date(at).toTimeString().slice(0, 8);
}

/** One line per cluster event, for `rbee status --watch` when the output is not a terminal. */
export function describeClusterEvent(e: ClusterEvent): string {
  const what = (() => {
    switch (e.type) {
      case "snapshot":
        return `cluster: ${e.cluster.hives.length} hive(s), ${e.cluster.workers.length} worker(s)`;
      case "hive_joined":
        return `hive ${e.hive_id} joined (${e.url})`;
      case "hive_state":
        return `hive ${e.hive_id} is ${e.state}${e.reason ? ` (${e.reason})` : ""}`;
      case "worker_added":
        return `worker ${e.worker.worker_id} added: ${e.worker.model} on ${e.worker.hive_id}/${e.worker.device} (${e.worker.status})`;
      case "worker_status":
        return `worker ${e.worker_id}: ${e.from} -> ${e.status}`;
      case "worker_removed":
        return `worker ${e.worker_id} removed (${e.reason})`;
    }
  })();
  return `${clock(e.at)} ${what}`;
}
