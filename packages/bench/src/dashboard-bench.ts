import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type HiveHeartbeat, PROTOCOL_VERSION } from "@rbee/contract";
import { ChildHandle } from "@rbee/testing";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { startQueenProcess } from "./processes.js";
import { printTable, quantile, round } from "./stats.js";

const LOAD_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), "heartbeat-load.js");
export const CHROMIUM = process.env.RBEE_CHROMIUM ?? "/usr/bin/chromium";

export interface FirstLoad {
  /** Bytes on the wire for the page and its assets (Resource Timing transferSize, headers included). */
  transferred_bytes: number;
  /** The same files uncompressed (decodedBodySize): what the page would cost without compression. */
  uncompressed_bytes: number;
  files: number;
  /** From navigation start to the cluster view showing the queen's answer. */
  to_live_ms: number;
}

export interface UpdateResult {
  workers: number;
  hives: number;
  rounds: number;
  /** From the heartbeat POST that adds a worker to the frame that shows its row. */
  update_p50_ms: number;
  update_p95_ms: number;
  update_max_ms: number;
  /** Main-thread tasks over 50 ms during the measuring window (Long Tasks API), and the longest. */
  long_tasks: number;
  longest_task_ms: number;
  /** The measuring window, in seconds (the simulated workers flip Ready ⇄ Busy all through it). */
  window_s: number;
}

export interface DashboardBenchOptions {
  workers: number[];
  workersPerHive: number;
  intervalMs: number;
  rounds: number;
}

async function openPage(): Promise<{ context: BrowserContext; page: Page; close: () => Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), "rbee-bench-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    close: async () => {
      await context.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

// Scripts run in the page are strings: this package is compiled without the DOM's types.
const FIRST_LOAD_SCRIPT = `(() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const res = performance.getEntriesByType("resource").filter((e) => !new URL(e.name).pathname.startsWith("/v1/"));
  const sum = (k) => nav[k] + res.reduce((s, e) => s + e[k], 0);
  return { transferred: sum("transferSize"), uncompressed: sum("decodedBodySize"), files: 1 + res.length };
})()`;

const LONG_TASKS_SCRIPT = `(() => {
  window.__longTasks = [];
  new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__longTasks.push(e.duration); })
    .observe({ type: "longtask" });
})()`;

/** Resolves (in the page) with Date.now() at the first frame after the row of `id` is in the DOM. */
const waitForRowScript = (id: string) => `(() => { window.__row = new Promise((resolve) => {
  const sel = 'tr[data-worker-id="${id}"]';
  const done = () => requestAnimationFrame(() => resolve(Date.now()));
  if (document.querySelector(sel)) return done();
  const mo = new MutationObserver(() => { if (document.querySelector(sel)) { mo.disconnect(); done(); } });
  mo.observe(document.body, { childList: true, subtree: true });
}); return true; })()`;

/** A hive of one worker, posted as the probe: each round names a new worker, so its row is new. */
function probeHeartbeat(workerId: string, intervalMs: number): HiveHeartbeat {
  const now = new Date().toISOString();
  return {
    protocol_version: PROTOCOL_VERSION,
    hive_id: "bench-probe",
    url: "http://127.0.0.1:9",
    version: "bench",
    started_at: now,
    interval_ms: intervalMs,
    devices: [],
    models: [],
    workers: [
      {
        worker_id: workerId,
        worker_type: "llm",
        model: "probe-model",
        device: "cpu",
        url: "http://127.0.0.1:9",
        port: 9,
        pid: null,
        status: "Ready",
        restarts: 0,
        last_exit: null,
        started_at: now,
        heartbeat_age_ms: null,
        heartbeat: null,
      },
    ],
  };
}

async function postHeartbeat(queenUrl: string, token: string, body: HiveHeartbeat): Promise<void> {
  const res = await fetch(`${queenUrl}/v1/hive-heartbeat`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`the probe heartbeat was refused: ${res.status} ${await res.text()}`);
  await res.arrayBuffer();
}

/** What a first visit costs: the bytes on the wire, compressed as the queen sends them, against uncompressed. */
export async function benchFirstLoad(): Promise<FirstLoad> {
  const queen = await startQueenProcess("bench-dashboard");
  const browser = await openPage();
  try {
    const t0 = Date.now();
    await browser.page.goto(`${queen.url}/`);
    await browser.page.locator('[data-connection="live"]').waitFor({ timeout: 30_000 });
    const toLive = Date.now() - t0;
    const r = (await browser.page.evaluate(FIRST_LOAD_SCRIPT)) as {
      transferred: number;
      uncompressed: number;
      files: number;
    };
    return {
      transferred_bytes: r.transferred,
      uncompressed_bytes: r.uncompressed,
      files: r.files,
      to_live_ms: toLive,
    };
  } finally {
    await browser.close();
    await queen.child.stop();
  }
}

/**
 * How fast the cluster view follows the cluster: simulated hives (heartbeat-load.ts, in its own
 * process) keep `workers` workers live and flipping Ready ⇄ Busy; each round a probe hive reports a
 * new worker, and the time from that POST to the frame that shows its row is measured in the page.
 */
export async function benchClusterUpdates(o: DashboardBenchOptions): Promise<UpdateResult[]> {
  const results: UpdateResult[] = [];
  for (const workers of o.workers) {
    const hives = Math.ceil(workers / o.workersPerHive);
    const queen = await startQueenProcess("bench-dashboard", { RBEE_HEARTBEAT_INTERVAL_MS: String(o.intervalMs) });
    let load: ChildHandle | undefined;
    const browser = await openPage();
    try {
      load = new ChildHandle(
        process.execPath,
        [LOAD_SCRIPT, queen.url, String(hives), String(o.workersPerHive), String(o.intervalMs)],
        { env: { RBEE_CLUSTER_TOKEN: queen.token } },
      );
      await load.waitForLine(/^\{"ready":true.*\}$/m, o.intervalMs * 4 + 30_000);
      const { page } = browser;
      await page.goto(`${queen.url}/#/cluster`);
      await page.locator('[data-connection="live"]').waitFor({ timeout: 30_000 });
      await page.waitForFunction(
        `document.querySelector('[data-testid="worker-count"]')?.textContent === "${workers}"`,
        undefined,
        { timeout: 60_000 },
      );
      await page.evaluate(LONG_TASKS_SCRIPT);
      const latencies: number[] = [];
      const t0 = Date.now();
      for (let i = 0; i < o.rounds; i++) {
        const id = `probe-${i}`;
        await page.evaluate(waitForRowScript(id));
        const sent = Date.now();
        await postHeartbeat(queen.url, queen.token, probeHeartbeat(id, o.intervalMs));
        const shown = (await page.evaluate("window.__row")) as number;
        latencies.push(shown - sent);
        await new Promise((r) => setTimeout(r, 150));
      }
      const windowS = (Date.now() - t0) / 1000;
      const longTasks = (await page.evaluate("window.__longTasks")) as number[];
      results.push({
        workers,
        hives,
        rounds: o.rounds,
        update_p50_ms: round(quantile(latencies, 0.5), 1),
        update_p95_ms: round(quantile(latencies, 0.95), 1),
        update_max_ms: round(Math.max(...latencies), 1),
        long_tasks: longTasks.length,
        longest_task_ms: round(Math.max(0, ...longTasks), 0),
        window_s: round(windowS, 1),
      });
    } finally {
      await browser.close();
      load?.kill("SIGKILL");
      await queen.child.stop();
    }
  }
  printTable(
    results.map((r) => ({
      workers: r.workers,
      hives: r.hives,
      "update p50 (ms)": r.update_p50_ms,
      "p95 (ms)": r.update_p95_ms,
      "max (ms)": r.update_max_ms,
      "long tasks": `${r.long_tasks} in ${r.window_s} s`,
      "longest task (ms)": r.longest_task_ms,
    })),
  );
  return results;
}

export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM);
}
