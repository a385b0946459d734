import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { freePort } from "@rbee/server-kit";
import { runRbee, waitFor } from "@rbee/testing";

export { freePort };

/**
 * A world of its own for one test file: fresh cache and config directories, free ports for the
 * queen and the hive, a worker port range of its own and fast heartbeats, so that a test never
 * touches the user's daemons, the default ports or another test's cluster.
 */
export interface Sandbox {
  env: NodeJS.ProcessEnv;
  cacheDir: string;
  configDir: string;
  queenUrl: string;
  hivePort: number;
  rbee: (
    args: readonly string[],
    o?: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv },
  ) => ReturnType<typeof runRbee>;
  /** `rbee down`, then SIGKILL for anything of this sandbox still running, then the directories go. */
  dispose: () => Promise<void>;
}

export async function sandbox(): Promise<Sandbox> {
  const root = mkdtempSync(join(tmpdir(), "rbee-cli-test-"));
  const cacheDir = join(root, "cache");
  const configDir = join(root, "config");
  const queenPort = await freePort();
  const hivePort = await freePort();
  const queenUrl = `http://127.0.0.1:${queenPort}`;
  const env: NodeJS.ProcessEnv = {
    RBEE_CACHE_DIR: cacheDir,
    RBEE_CONFIG_DIR: configDir,
    RBEE_QUEEN_PORT: String(queenPort),
    RBEE_HIVE_PORT: String(hivePort),
    RBEE_QUEEN_URL: queenUrl,
    RBEE_HEARTBEAT_INTERVAL_MS: "500",
    RBEE_WORKER_PORT_START: String(20_000 + Math.floor(Math.random() * 30_000)),
    RBEE_API_KEY: "",
    RBEE_DEBUG: "",
  };
  const rbee: Sandbox["rbee"] = (args, o = {}) =>
    runRbee(args, { env: { ...env, ...o.env }, input: o.input, timeoutMs: o.timeoutMs ?? 60_000 });
  return {
    env,
    cacheDir,
    configDir,
    queenUrl,
    hivePort,
    rbee,
    dispose: async () => {
      await rbee(["down"], { timeoutMs: 60_000 }).catch(() => undefined);
      for (const pid of sandboxProcesses(cacheDir)) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {}
      }
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/**
 * The processes started for this sandbox (queen, hive, workers, CLIs): those whose environment
 * names its cache directory. Linux only (reads /proc); zombies are not counted.
 */
export function sandboxProcesses(cacheDir: string): number[] {
  const needle = `RBEE_CACHE_DIR=${cacheDir}\0`;
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (!readFileSync(`/proc/${entry}/environ`, "utf8").includes(needle)) continue;
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (stat.charAt(stat.lastIndexOf(")") + 2) === "Z") continue;
      pids.push(Number(entry));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return pids;
}

/** Waits until no process of the sandbox runs; fails naming the ones left. */
export async function expectNoProcessesLeft(cacheDir: string, timeoutMs = 10_000): Promise<void> {
  await waitFor(
    () => (sandboxProcesses(cacheDir).length === 0 ? true : undefined),
    timeoutMs,
    "no rbee process of this test left",
  ).catch(() => {
    const left = sandboxProcesses(cacheDir).map((pid) => {
      try {
        return `${pid}: ${readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ")}`;
      } catch {
        return String(pid);
      }
    });
    throw new Error(`processes left behind:\n${left.join("\n")}`);
  });
}

/** True while a process with this pid exists (and is not a zombie). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.charAt(stat.lastIndexOf(")") + 2) !== "Z";
  } catch {
    return false;
  }
}

/** The pid a daemon's pid file names, if it exists. */
export function pidFromFile(cacheDir: string, name: "queen" | "hive"): number | undefined {
  try {
    return (JSON.parse(readFileSync(join(cacheDir, "run", `${name}.pid`), "utf8")) as { pid: number }).pid;
  } catch {
    return undefined;
  }
}

/** Every error is one line: no stack trace, no second line. */
export function expectOneLine(stderr: string): string {
  const lines = stderr.split("\n").filter((l) => l.trim() !== "");
  if (lines.length !== 1) throw new Error(`expected one line on stderr, got ${lines.length}:\n${stderr}`);
  if (/\bat .*\.js:\d+/.test(stderr)) throw new Error(`stderr has a stack trace:\n${stderr}`);
  return lines[0] ?? "";
}

const MODULE_RECORDER = fileURLToPath(new URL("./fixtures/record-modules.mjs", import.meta.url));

/**
 * Runs `rbee` with a Node hook that records every module it loads (fixtures/record-modules.mjs);
 * returns its result and the modules' URLs. For tests of what a command does not load: they count
 * modules, not milliseconds, so a loaded machine cannot make them flaky.
 */
export async function rbeeLoadedModules(
  s: Sandbox,
  args: readonly string[],
  o: { timeoutMs?: number } = {},
): Promise<{ result: Awaited<ReturnType<Sandbox["rbee"]>>; modules: string[] }> {
  const file = join(s.cacheDir, `modules-${process.hrtime.bigint()}.txt`);
  mkdirSync(s.cacheDir, { recursive: true });
  const result = await s.rbee(args, {
    ...o,
    env: {
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --import=${pathToFileURL(MODULE_RECORDER).href}`.trim(),
      RBEE_RECORD_MODULES: file,
    },
  });
  const modules = existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : [];
  return { result, modules };
}

/** What a command that only talks to the queen must never load: the schemas, the servers, the engines. */
export const HEAVY_MODULES: ReadonlyArray<readonly [what: string, path: RegExp]> = [
  ["zod", /\/node_modules\/zod\//],
  ["pino", /\/node_modules\/pino\//],
  ["prom-client", /\/node_modules\/prom-client\//],
  ["hono", /\/node_modules\/hono\//],
  ["node-llama-cpp", /\/node_modules\/node-llama-cpp\//],
  ["the queen's code", /\/packages\/queen\//],
  ["the hive's code", /\/packages\/hive\//],
  ["the catalog server", /\/packages\/catalog-server\//],
  [
    "server-kit's server side (logger, metrics, HTTP server)",
    /\/packages\/server-kit\/dist\/(index|log|metrics|http\/server)\.js$/,
  ],
  ["TLS (loaded for https:// URLs only)", /^node:(https|tls)$/],
];

/** The heavy modules among `modules`, named ("zod: file:///.../zod/v4/index.js"). */
export function heavyModulesIn(modules: readonly string[]): string[] {
  return modules.flatMap((url) => HEAVY_MODULES.filter(([, re]) => re.test(url)).map(([what]) => `${what}: ${url}`));
}
