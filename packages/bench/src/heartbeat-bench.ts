import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ChildHandle, getJson } from "@rbee/testing";
import { cpuSeconds, mib, pct, rssBytes, sleep, startQueenProcess } from "./processes.js";
import { printTable, round } from "./stats.js";

export interface HeartbeatBenchOptions {
  /** Simulated worker counts; 0 is the idle queen, the baseline. */
  workers: number[];
  workersPerHive: number;
  intervalMs: number;
  /** How long the queen's CPU is measured for each count. */
  windowMs: number;
  /** Directory for a V8 CPU profile of each loaded queen (node --cpu-prof), or none. */
  cpuProfileDir?: string;
}

export interface HeartbeatResult {
  workers: number;
  hives: number;
  window_s: number;
  heartbeats_per_s: number;
  failed_heartbeats: number;
  /** The queen's CPU time over the window, as a fraction of one core. */
  cpu_core_fraction: number;
  /** The same, minus the idle queen's. */
  added_core_fraction: number;
  /** CPU time per hive heartbeat received (µs), over the idle queen's. */
  cpu_us_per_heartbeat: number;
  rss_mib: number;
  workers_known: number;
}

const LOAD_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), "heartbeat-load.js");

/**
 * The queen's cost of heartbeats: a fresh `rbee queen start --foreground` per worker count, a load
 * generator in another process posting hive heartbeats (workersPerHive workers each, staggered over
 * the interval), and the queen's utime+stime from /proc over a fixed window once every hive has
 * been heard and one more round has gone by. The idle queen (no hives) is measured the same way.
 */
export async function benchHeartbeat(o: HeartbeatBenchOptions): Promise<HeartbeatResult[]> {
  const results: HeartbeatResult[] = [];
  let idle = 0;
  for (const workers of o.workers) {
    const hives = Math.ceil(workers / o.workersPerHive);
    const profile = workers > 0 && o.cpuProfileDir ? ["--cpu-prof", `--cpu-prof-dir=${o.cpuProfileDir}`] : [];
    const queen = await startQueenProcess(
      "bench-heartbeat",
      { RBEE_HEARTBEAT_INTERVAL_MS: String(o.intervalMs) },
      profile,
    );
    let load: ChildHandle | undefined;
    try {
      if (hives > 0) {
        load = new ChildHandle(
          process.execPath,
          [LOAD_SCRIPT, queen.url, String(hives), String(o.workersPerHive), String(o.intervalMs)],
          {
            env: { RBEE_CLUSTER_TOKEN: queen.token },
          },
        );
        await load.waitForLine(/^\{"ready":true.*\}$/m, o.intervalMs * 4 + 30_000);
      }
      // the first round added every worker; measure the steady state after one more
      await sleep(o.intervalMs);
      const cpu0 = cpuSeconds(queen.child.pid);
      const t0 = performance.now();
      await sleep(o.windowMs);
      const cpu1 = cpuSeconds(queen.child.pid);
      const seconds = (performance.now() - t0) / 1000;
      const rss = rssBytes(queen.child.pid);
      let sent = 0;
      let failed = 0;
      if (load) {
        load.kill("SIGTERM");
        await load.waitForExit(10_000);
        const last = /\{"sent":(\d+),"failed":(\d+).*\}/.exec(load.stdout);
        sent = Number(last?.[1] ?? 0);
        failed = Number(last?.[2] ?? 0);
      }
      const cluster = await getJson<{ workers: unknown[] }>(`${queen.url}/v1/cluster`, queen.token);
      const fraction = (cpu1 - cpu0) / seconds;
      if (workers === 0) idle = fraction;
      const beatsPerSecond = hives / (o.intervalMs / 1000);
      results.push({
        workers,
        hives,
        window_s: round(seconds, 1),
        heartbeats_per_s: round(beatsPerSecond, 1),
        failed_heartbeats: failed,
        cpu_core_fraction: round(fraction, 4),
        added_core_fraction: round(fraction - idle, 4),
        cpu_us_per_heartbeat: hives > 0 ? round(((fraction - idle) / beatsPerSecond) * 1e6, 0) : 0,
        rss_mib: mib(rss),
        workers_known: cluster.body.workers.length,
      });
      if (sent > 0 && failed > 0) console.log(`(${failed} of ${sent} heartbeats failed at ${workers} workers)`);
    } finally {
      load?.kill("SIGKILL");
      await queen.child.stop();
    }
  }
  printTable(
    results.map((r) => ({
      workers: r.workers === 0 ? "0 (idle queen)" : r.workers,
      hives: r.hives,
      "heartbeats/s": r.heartbeats_per_s,
      "queen CPU (one core)": pct(r.cpu_core_fraction),
      "added over idle": r.workers === 0 ? "" : pct(r.added_core_fraction),
      "µs per heartbeat": r.workers === 0 ? "" : r.cpu_us_per_heartbeat,
      "RSS MiB": r.rss_mib,
      "workers known": r.workers_known,
    })),
  );
  return results;
}
