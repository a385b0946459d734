import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { freePort } from "@rbee/server-kit";
import { getJson, HiveGroup, postJson, requireStoriesModel, runJob, waitFor } from "@rbee/testing";
import { keepAliveAgent, postJson as post } from "./http-load.js";
import { rssBytes, sleep, startQueenProcess } from "./processes.js";
import { median, printTable, round } from "./stats.js";

export interface SoakOptions {
  durationMs: number;
  streams: number;
  /** Samples of every process's memory and file descriptors. */
  sampleEveryMs: number;
  /** Before this, figures settle (allocators grow, pools fill): they are not held to the target. */
  warmupMs: number;
  maxTokens: number;
}

export interface SoakSample {
  at_s: number;
  /** process name ("queen", "hive", "worker <id>") → figures */
  processes: Record<string, { pid: number; rss_mib: number; fds: number }>;
  requests: number;
  failed: number;
}

export interface SoakVerdict {
  process: string;
  rss_after_warmup_mib: number;
  rss_end_mib: number;
  rss_growth: number;
  fds_after_warmup: number;
  fds_end: number;
  fds_growth: number;
  /** Set when the process changed pid during the run (a restart: its figures start over). */
  restarted?: boolean;
}

export interface SoakResult {
  duration_s: number;
  streams: number;
  requests: number;
  failed: number;
  errors: string[];
  samples: SoakSample[];
  verdicts: SoakVerdict[];
}

/** Open file descriptors of a process (Linux: /proc/<pid>/fd). */
export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/**
 * Soak: `streams` clients streaming chat completions one after another through a real queen to
 * two llm workers (stories260K, 1 thread, 4 slots each) on a real hive, for `durationMs`. Every
 * `sampleEveryMs` it reads the RSS and the open file descriptors of the queen, the hive and each
 * worker. A process is flat when its figures at the end (median of the last 3 samples) are within
 * 10 % of those just after the warm-up (median of the first 3 samples after it): the baseline is
 * the same process earlier in the same run.
 */
export async function benchSoak(o: SoakOptions): Promise<SoakResult> {
  const queen = await startQueenProcess("bench-soak");
  const hive = new HiveGroup(
    "soak-hive",
    await freePort(),
    {
      RBEE_CONFIG_DIR: queen.env.RBEE_CONFIG_DIR,
      RBEE_CACHE_DIR: mkdtempSync(join(tmpdir(), "rbee-bench-soak-")),
      RBEE_QUEEN_URL: queen.url,
      RBEE_WORKER_PORT_START: String(21_000 + Math.floor(Math.random() * 20_000)),
      RBEE_LOG_LEVEL: "info",
    },
    ["--models-dir", dirname(requireStoriesModel())],
  );
  const agent = keepAliveAgent(o.streams);
  try {
    await hive.ready();
    const added = await postJson<{ id: string }>(
      `${hive.url}/v1/models`,
      { ref: requireStoriesModel() },
      { token: queen.token },
    );
    if (added.status !== 200) throw new Error(`the hive could not add the model: ${added.text}`);
    const model = added.body.id;
    await waitFor(
      async () => {
        const c = await getJson<{ hives: Array<{ state: string; models: Array<{ id: string }> }> }>(
          `${queen.url}/v1/cluster`,
          queen.token,
        );
        return c.body.hives.some((h) => h.state === "live" && h.models.some((m) => m.id === model)) ? true : undefined;
      },
      60_000,
      "the hive live with the model",
    );
    const spawned = await runJob(
      queen.url,
      { type: "spawn_worker", model, replicas: 2, threads: 1, parallel: 4, ctx_size: 512 },
      queen.token,
    );
    if (spawned.error) throw new Error(`spawning the workers: ${spawned.error.message}`);

    const processes = async (): Promise<Record<string, number>> => {
      const c = await getJson<{ workers: Array<{ worker_id: string; pid: number | null }> }>(
        `${queen.url}/v1/cluster`,
        queen.token,
      );
      const out: Record<string, number> = { queen: queen.child.pid, hive: hive.pid };
      for (const w of c.body.workers) if (w.pid) out[`worker ${w.worker_id}`] = w.pid;
      return out;
    };

    let requests = 0;
    let failed = 0;
    const errors: string[] = [];
    let running = true;
    const body = {
      model,
      messages: [{ role: "user", content: "Tell me a story about a cat." }],
      max_tokens: o.maxTokens,
      stream: true,
    };
    const client = async () => {
      while (running) {
        const reply = await post(`${queen.url}/v1/chat/completions`, body, agent, {}, 120_000);
        requests++;
        if (reply.status !== 200 || !reply.body.includes("[DONE]") || reply.body.includes('"error"')) {
          failed++;
          if (errors.length < 5) errors.push(`${reply.status} ${reply.body.slice(0, 200)}`);
          await sleep(200);
        }
      }
    };
    const t0 = performance.now();
    const clients = Array.from({ length: o.streams }, client);
    const samples: SoakSample[] = [];
    const firstPid = new Map<string, number>();
    const restarted = new Set<string>();
    while (performance.now() - t0 < o.durationMs) {
      const sample: SoakSample = {
        at_s: round((performance.now() - t0) / 1000, 0),
        processes: {},
        requests,
        failed,
      };
      for (const [name, pid] of Object.entries(await processes())) {
        try {
          sample.processes[name] = { pid, rss_mib: round(rssBytes(pid) / 2 ** 20, 1), fds: openFds(pid) };
        } catch {
          continue; // gone between the listing and the read
        }
        if (!firstPid.has(name)) firstPid.set(name, pid);
        else if (firstPid.get(name) !== pid) restarted.add(name);
      }
      samples.push(sample);
      console.log(
        `soak +${sample.at_s} s: ${requests} requests (${failed} failed); ${Object.entries(sample.processes)
          .map(([n, p]) => `${n} ${p.rss_mib} MiB ${p.fds} fds`)
          .join(", ")}`,
      );
      await sleep(Math.min(o.sampleEveryMs, Math.max(0, o.durationMs - (performance.now() - t0))));
    }
    running = false;
    await Promise.all(clients);
    const duration = (performance.now() - t0) / 1000;

    const settled = samples.filter((s) => s.at_s * 1000 >= o.warmupMs);
    const verdicts: SoakVerdict[] = [];
    for (const name of firstPid.keys()) {
      const seen = settled.filter((s) => s.processes[name] !== undefined).map((s) => s.processes[name]);
      if (seen.length < 2) continue;
      const early = seen.slice(0, 3) as Array<{ rss_mib: number; fds: number }>;
      const late = seen.slice(-3) as Array<{ rss_mib: number; fds: number }>;
      const rss0 = median(early.map((p) => p.rss_mib));
      const rss1 = median(late.map((p) => p.rss_mib));
      const fd0 = median(early.map((p) => p.fds));
      const fd1 = median(late.map((p) => p.fds));
      verdicts.push({
        process: name,
        rss_after_warmup_mib: rss0,
        rss_end_mib: rss1,
        rss_growth: round(rss1 / rss0 - 1, 4),
        fds_after_warmup: fd0,
        fds_end: fd1,
        fds_growth: round(fd1 / Math.max(1, fd0) - 1, 4),
        ...(restarted.has(name) ? { restarted: true } : {}),
      });
    }
    printTable(
      samples
        .filter((_, i) => i % Math.max(1, Math.floor(samples.length / 12)) === 0 || i === samples.length - 1)
        .map((s) => ({
          "at s": s.at_s,
          requests: s.requests,
          failed: s.failed,
          ...Object.fromEntries(Object.entries(s.processes).map(([n, p]) => [n, `${p.rss_mib} MiB, ${p.fds} fds`])),
        })),
    );
    return {
      duration_s: round(duration, 0),
      streams: o.streams,
      requests,
      failed,
      errors,
      samples,
      verdicts,
    };
  } finally {
    agent.destroy();
    await hive.stop();
    await queen.child.stop();
  }
}

/** `meets target: queen stays flat: RSS 70.1 → 71.0 MiB (+1.3 %), fds 31 → 31 (+0.0 %) (target: growth < 10 %)` */
export function soakVerdictLine(v: SoakVerdict): string {
  const pct = (g: number) => `${g >= 0 ? "+" : ""}${(g * 100).toFixed(1)} %`;
  const flat = v.rss_growth < 0.1 && v.fds_growth < 0.1;
  return `${flat ? "meets" : "MISSES"} target: ${v.process} stays flat after warm-up: RSS ${v.rss_after_warmup_mib} → ${v.rss_end_mib} MiB (${pct(v.rss_growth)}), open fds ${v.fds_after_warmup} → ${v.fds_end} (${pct(v.fds_growth)}) (target: growth < 10 %)${v.restarted ? " (it restarted during the run)" : ""}`;
}
