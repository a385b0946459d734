import type { ClusterEvent, ClusterGroup, ClusterSnapshot, ClusterWorker, ClusterWorkerTypes } from "@rbee/contract";
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

function statusCell(w: ClusterWorker): string {
  return w.draining ? `${w.status} (draining)` : w.routable ? w.status : `${w.status} (unroutable)`;
}

/** A worker's row: id, model, type, hive, device, status, load, tok/s, requests, idle / keep-alive. */
function workerRow(w: ClusterWorker): string[] {
  return [
    w.worker_id,
    w.model,
    w.worker_type,
    w.hive_id,
    w.device,
    statusCell(w),
    load(w),
    rate(w.tokens_per_second),
    String(w.requests_total),
    idle(w),
  ];
}

/** A worker group: one row (what clients see: its coordinator's load), then its members beneath. */
function groupRows(g: ClusterGroup, byId: ReadonlyMap<string, ClusterWorker>): string[][] {
  const c = byId.get(g.coordinator);
  const shards = g.members.filter((m) => m.role === "shard");
  const head = [
    g.group_id,
    g.model,
    "group",
    c?.hive_id ?? "-",
    `${shards.length} devices`,
    g.health,
    c ? load(c) : "-",
    c ? rate(c.tokens_per_second) : "-",
    c ? String(c.requests_total) : "-",
    c ? idle(c) : "-",
  ];
  const members = g.members.map((m, i) => {
    const share = m.fraction === undefined ? "" : ` ${Math.round(m.fraction * 100)}%`;
    const w = byId.get(m.worker_id);
    return [
      `${i === g.members.length - 1 ? "└" : "├"} ${m.role} ${m.worker_id}`,
      "",
      w?.worker_type ?? "",
      m.hive_id,
      `${m.device}${share}`,
      w ? statusCell(w) : m.status,
      "",
      "",
      "",
      "",
    ];
  });
  return [head, ...members];
}

/** Why each group that is not healthy is so. */
function groupReasons(groups: readonly ClusterGroup[]): string[] {
  return groups
    .filter((g) => g.health !== "healthy" && g.reason)
    .map((g) => `worker group ${g.group_id} is ${g.health}: ${g.reason}`);
}

/**
 * The workers as a table (shared by `rbee status` and `rbee worker ls`), then why any failed. A
 * worker group is one row, with its coordinator and shards beneath it.
 */
export function renderWorkers(workers: readonly ClusterWorker[], groups: readonly ClusterGroup[] = []): string {
  if (workers.length === 0 && groups.length === 0) {
    return "no workers: they start on the first request for a model, or with `rbee worker spawn -m <model>`";
  }
  const byId = new Map(workers.map((w) => [w.worker_id, w]));
  const inGroups = new Set(groups.flatMap((g) => g.members.map((m) => m.worker_id)));
  const table = renderTable(
    [
      { header: "id" },
      { header: "model" },
      { header: "type" },
      { header: "hive" },
      { header: "device" },
      { header: "status" },
      { header: "load", align: "right" },
      { header: "tok/s", align: "right" },
      { header: "requests", align: "right" },
      { header: "idle / keep-alive" },
    ],
    [...workers.filter((w) => !inGroups.has(w.worker_id)).map(workerRow), ...groups.flatMap((g) => groupRows(g, byId))],
  );
  return [table, ...failures(workers), ...groupReasons(groups)].join("\n");
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
  parts.push(renderWorkers(c.workers, c.groups ?? []));
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
      case "worker_draining":
        return e.draining
          ? `worker ${e.worker_id} draining (${e.reason})`
          : `worker ${e.worker_id} serves again (${e.reason})`;
      case "worker_stopping":
        return e.stopping
          ? `worker ${e.worker_id} stopping (${e.reason})`
          : `worker ${e.worker_id} serves on (${e.reason})`;
      case "hive_stopping":
        return e.stopping ? `hive ${e.hive_id} is stopping` : `hive ${e.hive_id} runs again`;
      case "hive_catalog": {
        const types = e.worker_types?.filter((t) => t.status === "Available").map((t) => t.id);
        return `hive ${e.hive_id} catalog: ${e.models.length} model(s)${types ? `, worker types ${types.join(", ") || "none"}` : ""}`;
      }
    }
  })();
  return `${clock(e.at)} ${what}`;
}

/**
 * `rbee worker types`: one row per worker type and hive (can it run there, on which devices, with
 * which engine), then why each type that cannot run somewhere cannot, and how to install it.
 */
export function renderWorkerTypes(t: ClusterWorkerTypes): string {
  const rows: string[][] = [];
  const problems: string[] = [];
  for (const type of t.types) {
    const caps = type.capabilities.join(", ");
    const hives = t.hives.filter((h) => h.worker_types.some((w) => w.id === type.id));
    if (hives.length === 0) {
      rows.push([type.id, "-", "no hive reports it", "-", "-", caps]);
      continue;
    }
    for (const h of hives) {
      const entry = h.worker_types.find((w) => w.id === type.id);
      if (entry === undefined) continue;
      const engine = entry.engines.find((e) => e.status === "ok");
      const engineText = engine ? `${engine.id} ${engine.version ?? ""}`.trim() : "-";
      const runsOn = entry.status === "Available" ? (entry.runs_on ?? entry.device_kinds).join(", ") || "-" : "-";
      const state = h.state === "live" ? entry.status.toLowerCase() : `${entry.status.toLowerCase()} (hive ${h.state})`;
      rows.push([type.id, h.hive_id, state, runsOn, engineText, caps]);
      if (entry.status !== "Available")
        problems.push(`${type.id} on hive ${h.hive_id}: ${entry.error ?? entry.status}`);
    }
  }
  const table = renderTable(
    [
      { header: "type" },
      { header: "hive" },
      { header: "status" },
      { header: "runs on" },
      { header: "engine" },
      { header: "serves" },
    ],
    rows,
  );
  return [
    table,
    ...problems,
    `models get the '${t.default_type}' type unless a request or a model's minimum names another (--type)`,
  ].join("\n");
}
