import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { freePort } from "@rbee/server-kit";
import { getJson, HiveGroup, postJson, requireStoriesModel, waitFor } from "@rbee/testing";
import { keepAliveAgent, postJson as post } from "./http-load.js";
import { type QueenProcess, sleep, startQueenProcess } from "./processes.js";
import { median, printTable, round } from "./stats.js";

export interface FailoverBenchOptions {
  runs: number;
  heartbeatIntervalMs: number;
  /** Clients polling the queen, each one request after another. */
  clients: number;
  /** Give up on a run after this long without a success. */
  timeoutMs: number;
}

export interface FailoverRun {
  /** From SIGKILL to the first successful answer to a request sent after it. */
  first_success_ms: number;
  /** Requests that failed from the kill on (what clients saw). */
  failed: number;
  /** From SIGKILL to the end of the last failed request (0 when none failed). */
  last_failure_ms: number;
  errors: string[];
  /** Baseline: a request's latency before the kill (p50). */
  request_p50_ms: number;
  /** Baseline: spawning the first worker on a healthy hive (the spawn job, placement and load). */
  spawn_ms: number;
}

export interface FailoverCase {
  case: "replica ready" | "re-placement";
  runs: FailoverRun[];
  first_success_p50_ms: number;
  failed_p50: number;
  /** What the case is compared with: a request before the kill, or a spawn on a healthy hive. */
  baseline: string;
  baseline_p50_ms: number;
  ratio: number;
}

interface Cluster {
  queen: QueenProcess;
  a: HiveGroup;
  b: HiveGroup;
  model: string;
}

async function startCluster(intervalMs: number, portBase: number): Promise<Cluster> {
  const interval = { RBEE_HEARTBEAT_INTERVAL_MS: String(intervalMs) };
  const queen = await startQueenProcess("bench-failover", interval);
  const hive = async (id: string, workerPorts: number) => {
    const cacheDir = mkdtempSync(join(tmpdir(), `rbee-bench-failover-${id}-`));
    return new HiveGroup(
      id,
      await freePort(),
      {
        ...interval,
        RBEE_CONFIG_DIR: queen.env.RBEE_CONFIG_DIR,
        RBEE_CACHE_DIR: cacheDir,
        RBEE_QUEEN_URL: queen.url,
        RBEE_WORKER_PORT_START: String(workerPorts),
        RBEE_LOG_LEVEL: "info",
      },
      // the shared test model may be named by path (hives take path models only from allowed directories)
      ["--models-dir", dirname(requireStoriesModel())],
    );
  };
  const a = await hive("hive-a", portBase);
  const b = await hive("hive-b", portBase + 100);
  const cluster = { queen, a, b, model: "" };
  try {
    await waitFor(
      async () => {
        const c = await getJson<{ hives: Array<{ id: string; state: string }> }>(
          `${queen.url}/v1/cluster`,
          queen.token,
        );
        return c.body.hives.filter((h) => h.state === "live").length === 2 ? true : undefined;
      },
      60_000,
      "both hives live on the queen",
    );
    // both machines hold the model file (a model is placed anew only where its file is)
    for (const h of [a, b]) {
      const r = await postJson<{ id: string }>(
        `${h.url}/v1/models`,
        { ref: requireStoriesModel() },
        { token: queen.token },
      );
      if (r.status !== 200) throw new Error(`hive ${h.id} could not add the model: ${r.text}`);
      cluster.model = r.body.id;
    }
    // ...and the queen has heard of it from both, so placement can choose either
    await waitFor(
      async () => {
        const c = await getJson<{ hives: Array<{ models: Array<{ id: string }> }> }>(
          `${queen.url}/v1/cluster`,
          queen.token,
        );
        return c.body.hives.every((h) => h.models.some((m) => m.id === cluster.model)) ? true : undefined;
      },
      30_000,
      "the model in both hives' catalogs",
    );
  } catch (err) {
    await stopCluster(cluster);
    throw new Error(`${(err as Error).message}\nhive-a:\n${a.tail()}\nhive-b:\n${b.tail()}`);
  }
  return cluster;
}

async function stopCluster(c: Cluster): Promise<void> {
  await Promise.all([c.a.stop(), c.b.stop()]);
  await c.queen.child.stop();
}

/** Spawns a worker by the job API and returns how long the job took. */
async function spawnWorker(c: Cluster, hive: string): Promise<number> {
  const t0 = performance.now();
  const created = await postJson<{ job_id: string }>(
    `${c.queen.url}/v1/jobs`,
    { operation: { type: "spawn_worker", model: c.model, hive, parallel: 2, threads: 1, ctx_size: 256 } },
    { token: c.queen.token },
  );
  if (created.status !== 202) throw new Error(`spawn on ${hive} refused: ${created.text}`);
  const status = await waitFor(
    async () => {
      const j = await getJson<{ status: string }>(`${c.queen.url}/v1/jobs/${created.body.job_id}`, c.queen.token);
      return j.body.status === "running" ? undefined : j.body.status;
    },
    120_000,
    `the worker on ${hive}`,
  );
  if (status !== "done") throw new Error(`spawning a worker on ${hive} ended ${status}`);
  return performance.now() - t0;
}

/**
 * One failure: clients poll the queen with a small completion, hive-a's process group (the hive and
 * its workers) gets SIGKILL, and the clients go on until a request sent after the kill succeeds
 * (and a second after it, so that the first was no fluke).
 */
async function oneRun(c: Cluster, o: FailoverBenchOptions): Promise<Omit<FailoverRun, "spawn_ms">> {
  const agent = keepAliveAgent(o.clients);
  const body = { model: c.model, prompt: "Once upon a time", max_tokens: 4, temperature: 0 };
  let killedAt = Number.POSITIVE_INFINITY;
  let firstSuccess = Number.POSITIVE_INFINITY;
  let successesAfter = 0;
  let failed = 0;
  let lastFailure = 0;
  const errors: string[] = [];
  const beforeKill: string[] = [];
  const healthy: number[] = [];
  const deadline = () => performance.now() > killedAt + o.timeoutMs;
  const client = async () => {
    while (successesAfter < 2 && !deadline()) {
      const start = performance.now();
      const reply = await post(`${c.queen.url}/v1/completions`, body, agent, {}, o.timeoutMs);
      const end = performance.now();
      if (reply.status === 200) {
        if (end < killedAt) healthy.push(end - start);
        if (start >= killedAt) {
          successesAfter++;
          firstSuccess = Math.min(firstSuccess, end - killedAt);
        }
      } else if (end >= killedAt) {
        failed++;
        lastFailure = Math.max(lastFailure, end - killedAt);
        if (errors.length < 3) errors.push(`${reply.status} ${reply.body.slice(0, 160)}`);
      } else if (beforeKill.length < 3) beforeKill.push(`${reply.status} ${reply.body.slice(0, 160)}`);
      // a failing request returns at once: do not spin
      if (reply.status !== 200) await sleep(20);
    }
  };
  const clients = Array.from({ length: o.clients }, client);
  await sleep(1000);
  killedAt = performance.now();
  c.a.kill("SIGKILL");
  await Promise.all(clients);
  agent.destroy();
  if (beforeKill.length > 0) throw new Error(`requests failed before the kill: ${beforeKill.join("; ")}`);
  if (!Number.isFinite(firstSuccess)) {
    throw new Error(`no request succeeded within ${o.timeoutMs} ms of the kill (${errors.join("; ")})`);
  }
  return {
    first_success_ms: round(firstSuccess, 0),
    failed,
    last_failure_ms: round(lastFailure, 0),
    errors,
    request_p50_ms: round(median(healthy), 1),
  };
}

/** With a replica, failover is compared with a plain request; without, with placing a worker on a healthy hive. */
function baseline(kind: FailoverCase["case"], runs: FailoverRun[]) {
  const first = median(runs.map((r) => r.first_success_ms));
  const [what, ms] =
    kind === "replica ready"
      ? ["a request before the kill", median(runs.map((r) => r.request_p50_ms))]
      : ["spawning a worker on a healthy hive", median(runs.map((r) => r.spawn_ms))];
  return { baseline: what, baseline_p50_ms: round(ms, 1), ratio: round(first / ms, 2) };
}

/**
 * Time from SIGKILL of a hive (and its workers) to the first successful request served elsewhere:
 * (a) with a replica ready on the other hive, (b) without, so that the queen places the model anew
 * on the other hive, which holds its file. A fresh queen and two fresh hives for every run.
 */
export async function benchFailover(o: FailoverBenchOptions): Promise<FailoverCase[]> {
  const cases: FailoverCase[] = [];
  for (const kind of ["replica ready", "re-placement"] as const) {
    const runs: FailoverRun[] = [];
    for (let i = 0; i < o.runs; i++) {
      const c = await startCluster(
        o.heartbeatIntervalMs,
        21_000 + ((i * 400 + (kind === "replica ready" ? 0 : 200)) % 20_000),
      );
      try {
        const spawnMs = await spawnWorker(c, "hive-a");
        if (kind === "replica ready") await spawnWorker(c, "hive-b");
        runs.push({ ...(await oneRun(c, o)), spawn_ms: round(spawnMs, 0) });
      } finally {
        await stopCluster(c);
      }
    }
    for (const e of runs.flatMap((r) => r.errors).slice(0, 2)) console.log(`(${kind}: a client saw ${e})`);
    cases.push({
      case: kind,
      runs,
      first_success_p50_ms: round(median(runs.map((r) => r.first_success_ms)), 0),
      failed_p50: median(runs.map((r) => r.failed)),
      ...baseline(kind, runs),
    });
  }
  printTable(
    cases.map((k) => ({
      case: k.case,
      "to first success p50 ms": k.first_success_p50_ms,
      "baseline p50 ms": `${k.baseline_p50_ms} (${k.baseline})`,
      "× baseline": k.ratio,
      "each run ms": k.runs.map((r) => r.first_success_ms).join(", "),
      "failed requests per run": k.runs.map((r) => r.failed).join(", "),
      "last failure ms": k.runs.map((r) => r.last_failure_ms).join(", "),
    })),
  );
  return cases;
}
