import { statSync } from "node:fs";
import { Rng } from "../fuzz.js";
import { postJson, runJob, waitFor } from "../http.js";
import { requireStoriesModel } from "../paths.js";
import {
  catalogViolations,
  convergenceGaps,
  type Durables,
  durabilityViolations,
  markedProcesses,
} from "./chaos-checks.js";
import { ChaosCluster, type ChaosHive, HUB_REPO } from "./chaos-cluster.js";
import { ChaosLoad } from "./chaos-load.js";

export const FAULT_KINDS = [
  "kill-worker",
  "kill-hive",
  "kill-machine",
  "kill-queen",
  "cut-link",
  "download-truncated",
  "download-corrupted",
  "download-hive-killed",
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface ChaosOptions {
  seed: number;
  /** Faults are injected until this much time has passed (the last one still recovers), and every kind at least once. */
  durationMs: number;
  clients?: number;
  /** A request that has not ended after this long is a hang. */
  requestTimeoutMs?: number;
  /** A fault after which the cluster is not back within this long is a violation. */
  convergeTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  log?: (line: string) => void;
}

export interface FaultRecord {
  kind: FaultKind;
  detail: string;
  at_ms: number;
  /** From the end of the fault (the kill, the restart, the restored link) to the cluster back at its minimums. */
  recovery_ms: number;
}

export interface ChaosReport {
  seed: number;
  duration_ms: number;
  faults: FaultRecord[];
  faults_by_kind: Record<string, number>;
  requests: number;
  succeeded: number;
  failures_by_kind: Record<string, number>;
  downloads: Record<string, number>;
  longest_recovery: FaultRecord | undefined;
  catalog_entries_checked: number;
  violations: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const REPLICAS = 2;

/**
 * The chaos suite: a real cluster (queen, two hive "machines", one behind a cuttable link, a local
 * Hub) under a steady load of real requests on stories260K, and faults one after another, in an
 * order and with timings drawn from a seeded RNG. After each fault the cluster must come back to
 * its minimums with no process nobody knows; after each fault and at the end no request may have
 * hung or ended unclearly, no Available catalog entry may differ from its sha256, and no API key,
 * minimum or hives.conf entry may be lost. Returns the figures and the violations (none is a pass).
 */
export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const log = o.log ?? ((line: string) => console.log(line));
  const rng = new Rng(o.seed);
  const cluster = new ChaosCluster({ heartbeatIntervalMs: o.heartbeatIntervalMs ?? 1000 });
  const violations: string[] = [];
  const faults: FaultRecord[] = [];
  const downloads: Record<string, number> = {};
  const queenDown: Array<[number, number]> = [];
  let queenDownSince: number | undefined;
  let checkedEntries = 0;
  const t0 = Date.now();
  const durables: Durables = { keys: [], model: "", replicas: REPLICAS, hivesConf: [] };
  let load: ChaosLoad | undefined;
  let hiveConfSeq = 0;

  const createKey = async (name: string) => {
    const r = await postJson<{ id: string; key: string }>(
      `${cluster.queenUrl}/v1/keys`,
      { name },
      { token: cluster.token },
    );
    if (r.status !== 201) throw new Error(`creating API key ${name}: ${r.status} ${r.text}`);
    durables.keys.push({ id: r.body.id, key: r.body.key });
  };

  const recordRequests = (since: number, label: string) => {
    for (const r of load?.since(since) ?? [])
      if (r.unclear) violations.push(`${label}: a request started at +${r.start - t0} ms: ${r.unclear}`);
  };

  /** Waits until the cluster is back; a timeout is a violation. Returns the time it took. */
  const converge = async (label: string): Promise<number> => {
    const from = Date.now();
    let gaps: string[] = [];
    const deadline = from + (o.convergeTimeoutMs ?? 120_000);
    for (;;) {
      gaps = await convergenceGaps(cluster, durables.model, REPLICAS).catch((err: unknown) => [String(err)]);
      if (gaps.length === 0) break;
      if (Date.now() > deadline) {
        violations.push(`${label}: not back within ${o.convergeTimeoutMs ?? 120_000} ms: ${gaps.join("; ")}`);
        break;
      }
      await sleep(250);
    }
    return Date.now() - from;
  };

  const checkState = async (label: string) => {
    const catalog = catalogViolations(cluster);
    checkedEntries += catalog.checked;
    for (const v of catalog.violations) violations.push(`${label}: ${v}`);
    for (const v of await durabilityViolations(cluster, durables).catch((err: unknown) => [String(err)]))
      violations.push(`${label}: ${v}`);
  };

  const killQueen = async (detail: string[]) => {
    if (rng.chance(0.5)) {
      // a key created just before the kill must survive it
      await createKey(`chaos-${durables.keys.length}`);
      detail.push("a key created just before");
    }
    const alias = `chaos-conf-${++hiveConfSeq}`;
    // hives.conf is the CLI's: an entry added while the queen dies is kept like any other
    const adding = cluster.addHivesConfEntry(alias, `10.9.0.${hiveConfSeq % 250}`).then(
      () => durables.hivesConf.push(alias),
      (err: unknown) => violations.push(`kill-queen: ${(err as Error).message}`),
    );
    await sleep(rng.int(400));
    queenDownSince = Date.now();
    cluster.queen.child.kill("SIGKILL");
    await cluster.queen.child.exited;
    const downMs = 300 + rng.int(2500);
    detail.push(`down ${downMs} ms`);
    await sleep(downMs);
    await cluster.startQueen();
    queenDown.push([queenDownSince, Date.now()]);
    queenDownSince = undefined;
    await adding;
  };

  const pickHive = (): ChaosHive => rng.pick(cluster.hives);

  const restartHive = async (h: ChaosHive, kind: "hive" | "machine", detail: string[]) => {
    if (kind === "machine") h.group.kill("SIGKILL");
    else process.kill(h.group.pid, "SIGKILL");
    await new Promise((r) => (h.group.exited ? r(undefined) : h.group.proc.once("exit", r)));
    const downMs = 200 + rng.int(3000);
    detail.push(`${h.id} down ${downMs} ms`);
    await sleep(downMs);
    await cluster.startHive(h);
  };

  let downloadSeq = 0;
  const download = async (mode: "truncated" | "corrupted" | "hive-killed", detail: string[]) => {
    const h = pickHive();
    const file = `stories-${++downloadSeq}.gguf`;
    await cluster.hub.setFile(HUB_REPO, file, { path: requireStoriesModel() });
    const model = `${HUB_REPO}:${file}`;
    const size = statSync(requireStoriesModel()).size;
    cluster.hub.faults.bytesPerSecond = 400_000; // about 3 s in flight
    if (mode === "truncated") Object.assign(cluster.hub.faults, { dropAfterBytes: rng.int(size), dropOnce: true });
    if (mode === "corrupted") cluster.hub.faults.corruptByteAt = (size >> 1) + rng.int(size >> 1); // past the header, which placement reads first
    detail.push(`${model} on ${h.id}`);
    const job = runJob(cluster.queenUrl, { type: "download_model", model, hive: h.id }, cluster.token);
    let outcome: string;
    try {
      if (mode === "hive-killed") {
        await sleep(500 + rng.int(1500));
        await restartHive(h, rng.chance(0.5) ? "hive" : "machine", detail);
      }
      const first = await withTimeout(job, 120_000, `the download job of ${model}`);
      outcome = first.error ? `error ${first.error.code}` : "done";
      if (mode === "corrupted" && !first.error)
        violations.push(`download-corrupted: ${model} was accepted with a corrupted byte`);
      if (mode === "truncated" && first.error)
        violations.push(`download-truncated: ${model} was not resumed: ${first.error.code} ${first.error.message}`);
      if (mode === "hive-killed" && first.error) {
        // the download is asked again once the hive is back, as a user would: it must resume and complete
        await waitFor(
          async () => ((await cluster.liveHives()).includes(h.id) ? true : undefined),
          60_000,
          `${h.id} live again`,
        );
        const again = await withTimeout(
          runJob(cluster.queenUrl, { type: "download_model", model, hive: h.id }, cluster.token),
          120_000,
          `the second download job of ${model}`,
        );
        outcome = `error ${first.error.code}, then ${again.error ? `error ${again.error.code}` : "done"}`;
        if (again.error) violations.push(`download-hive-killed: asked again, ${model} failed: ${again.error.message}`);
      }
    } catch (err) {
      outcome = "hang";
      violations.push(`download-${mode}: ${(err as Error).message}`);
    } finally {
      for (const k of ["bytesPerSecond", "dropAfterBytes", "dropOnce", "corruptByteAt"] as const)
        delete cluster.hub.faults[k];
    }
    detail.push(outcome);
    const key = `${mode}: ${outcome}`;
    downloads[key] = (downloads[key] ?? 0) + 1;
  };

  const inject = async (kind: FaultKind): Promise<string> => {
    const detail: string[] = [];
    switch (kind) {
      case "kill-worker": {
        const workers = (await knownWorkers(cluster)).filter((w) => w.pid);
        if (workers.length === 0) return "no worker to kill";
        const w = rng.pick(workers);
        process.kill(w.pid as number, "SIGKILL");
        detail.push(`${w.worker_id} (pid ${w.pid}) on ${w.hive_id}`);
        break;
      }
      case "kill-hive":
        await restartHive(pickHive(), "hive", detail);
        break;
      case "kill-machine":
        await restartHive(pickHive(), "machine", detail);
        break;
      case "kill-queen":
        await killQueen(detail);
        break;
      case "cut-link": {
        const mode = rng.chance(0.7) ? "stall" : "reset";
        const ms = 1000 + rng.int(9000);
        cluster.link.cut(mode);
        await sleep(ms);
        cluster.link.restore();
        detail.push(`${mode} for ${ms} ms`);
        break;
      }
      case "download-truncated":
        await download("truncated", detail);
        break;
      case "download-corrupted":
        await download("corrupted", detail);
        break;
      case "download-hive-killed":
        await download("hive-killed", detail);
        break;
    }
    return detail.join(", ");
  };

  try {
    log(
      `chaos: seed ${o.seed} (replay with RBEE_CHAOS_SEED=${o.seed}), ${Math.round(o.durationMs / 1000)} s of faults`,
    );
    await cluster.start();
    durables.model = await cluster.addModelEverywhere(requireStoriesModel());
    for (const h of cluster.hives) {
      await cluster.addHivesConfEntry(h.id, "127.0.0.1");
      durables.hivesConf.push(h.id);
    }
    const spawned = await runJob(
      cluster.queenUrl,
      { type: "spawn_worker", model: durables.model, replicas: REPLICAS, threads: 1, ctx_size: 256, parallel: 2 },
      cluster.token,
    );
    if (spawned.error) throw new Error(`spawning the minimum: ${spawned.error.message}`);
    await createKey("chaos-load");
    load = new ChaosLoad({
      queenUrl: () => cluster.queenUrl,
      apiKey: () => durables.keys[0]?.key ?? "",
      model: durables.model,
      clients: o.clients ?? 3,
      timeoutMs: o.requestTimeoutMs ?? 90_000,
      seed: o.seed,
      queenDownDuring: (s, e) =>
        (queenDownSince !== undefined && queenDownSince <= e) || queenDown.some(([a, b]) => a <= e && b >= s),
    });
    await converge("start");
    load.start();
    await sleep(2000);
    log(`chaos: cluster up in ${Date.now() - t0} ms; load running (${o.clients ?? 3} clients)`);

    const faultsFrom = Date.now();
    let round: FaultKind[] = [];
    // every kind at least once, however short the run
    while (Date.now() - faultsFrom < o.durationMs || faults.length < FAULT_KINDS.length) {
      // every kind once per round, in an order the seed decides
      if (round.length === 0) round = shuffle(rng, [...FAULT_KINDS]);
      const kind = round.shift() as FaultKind;
      const at = Date.now();
      const detail = await inject(kind);
      const recovery = await converge(`${kind} (${detail})`);
      await checkState(`after ${kind} (${detail})`);
      recordRequests(at, `during ${kind} (${detail})`);
      const record = { kind, detail, at_ms: at - t0, recovery_ms: recovery };
      faults.push(record);
      log(`chaos: +${Math.round((at - t0) / 1000)} s ${kind}: ${detail}; back after ${recovery} ms`);
      await sleep(500 + rng.int(2500));
    }
    const stopAt = Date.now();
    await load.stop();
    recordRequests(stopAt, "at the end");
    await checkState("at the end");
  } finally {
    await load?.stop();
    await cluster.stop().catch((err: unknown) => violations.push(`stopping the cluster: ${String(err)}`));
    // nothing of the run may outlive a graceful stop
    const left = await waitFor(
      () => {
        const m = markedProcesses(cluster.marker);
        return m.size === 0 ? m : undefined;
      },
      45_000,
      "every process of the run to exit",
    ).catch(() => markedProcesses(cluster.marker));
    for (const [pid, cmd] of left) {
      violations.push(`after the cluster stopped, process ${pid} is still running: ${cmd}`);
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
    cluster.clean();
  }

  const records = load?.records ?? [];
  const failures: Record<string, number> = {};
  for (const r of records) if (r.outcome !== "ok") failures[r.outcome] = (failures[r.outcome] ?? 0) + 1;
  const byKind: Record<string, number> = {};
  for (const f of faults) byKind[f.kind] = (byKind[f.kind] ?? 0) + 1;
  return {
    seed: o.seed,
    duration_ms: Date.now() - t0,
    faults,
    faults_by_kind: byKind,
    requests: records.length,
    succeeded: records.filter((r) => r.outcome === "ok").length,
    failures_by_kind: failures,
    downloads,
    longest_recovery: faults.reduce<FaultRecord | undefined>(
      (a, f) => (a === undefined || f.recovery_ms > a.recovery_ms ? f : a),
      undefined,
    ),
    catalog_entries_checked: checkedEntries,
    violations,
  };
}

async function knownWorkers(c: ChaosCluster) {
  const r = await fetch(`${c.queenUrl}/v1/cluster`, { headers: { authorization: `Bearer ${c.token}` } });
  return ((await r.json()) as { workers: Array<{ worker_id: string; hive_id: string; pid: number | null }> }).workers;
}

function shuffle<T>(rng: Rng, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not end within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The report in lines a person reads. */
export function formatReport(r: ChaosReport): string[] {
  const kinds = (m: Record<string, number>) =>
    Object.entries(m)
      .sort((a, b) => b[1] - a[1])
      .map(([k, n]) => `${n} ${k}`)
      .join(", ") || "none";
  const lr = r.longest_recovery;
  return [
    `chaos: seed ${r.seed}, ${Math.round(r.duration_ms / 1000)} s in all`,
    `faults injected: ${r.faults.length} (${kinds(r.faults_by_kind)})`,
    `requests: ${r.requests}, ${r.succeeded} succeeded, failures by kind: ${kinds(r.failures_by_kind)}`,
    `downloads: ${kinds(r.downloads)}`,
    `longest recovery: ${lr ? `${lr.recovery_ms} ms after ${lr.kind} (${lr.detail})` : "-"}`,
    `catalog entries checked against their sha256: ${r.catalog_entries_checked}`,
    r.violations.length === 0
      ? "violations: none"
      : `violations: ${r.violations.length}\n${r.violations.map((v) => `  - ${v}`).join("\n")}`,
  ];
}
