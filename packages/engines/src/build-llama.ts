import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, existsSync, type WriteStream } from "node:fs";
import { chmod, copyFile, mkdir, open, readFile, rename, rm, stat, unlink } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { basename, join } from "node:path";
import { isPidAlive } from "@rbee/server-kit/client";
import { parseCmakeProgress } from "./cmake-progress.js";
import { type Backend, buildId, type EngineId, llamaCppPaths } from "./layout.js";
import { type LlamaCppSource, llamaCppSource } from "./llama-source.js";
import { probeVersion } from "./probe-version.js";
import { EngineBuildRecord, readRecord, writeRecord } from "./records.js";
import { BuildAbortedError, BuildStepError, runLogged } from "./run-logged.js";
import {
  type BackendPlan,
  BUILD_TARGETS,
  cmakeFlags,
  findToolchain,
  MissingToolError,
  planBackends,
  type Toolchain,
  type ToolName,
} from "./toolchain.js";

/** The phases of one build, in order. */
export type BuildStage = "clone" | "configure" | "compile" | "install";

/** What a build tells its caller as it goes. */
export type BuildEvent =
  /** A line for a person: what was found, decided, skipped or done. */
  | { type: "say"; message: string }
  /**
   * Where one build is: its stage and, while compiling, the binary being built (`goal`: llama-server,
   * then ggml-rpc-server, then llama-bench; CMake counts each one's percentage from 0, and the first
   * holds nearly all the work), CMake's percentage for it, and the library or program at hand.
   */
  | {
      type: "progress";
      id: string;
      backend: Backend;
      stage: BuildStage;
      percent?: number;
      target?: string;
      goal?: string;
    }
  /** One raw line of git's or CMake's output (all of it is in the build log too). */
  | { type: "output"; id: string; line: string };

export interface BuildLlamaCppOptions {
  /** Where engines live (see `enginesDir` in @rbee/server-kit). */
  enginesDir: string;
  /** PATH and the rest for the tools; process.env by default. */
  env?: NodeJS.ProcessEnv;
  /** Backends asked for (`--backend`); the CPU build is always made. Default: those whose toolkit and device are present. */
  backends?: readonly Backend[];
  /** Build again even when a finished build exists (incremental in its kept work tree). */
  force?: boolean;
  /** Remove the work trees (source and objects) once the builds are installed. */
  clean?: boolean;
  /** Parallel compile jobs; default: the cores available. */
  jobs?: number;
  /** Aborting stops git/cmake and every compiler they started; the work tree is kept. */
  signal?: AbortSignal;
  onEvent?: (event: BuildEvent) => void;
}

export interface BuildResult {
  id: string;
  backend: Backend;
  /** `<engines>/llama.cpp/<id>`: bin/ and engine.json. */
  dir: string;
  /** True when a finished build was found and nothing was built. */
  cached: boolean;
  record: EngineBuildRecord;
}

const BIN_FILES: Record<(typeof BUILD_TARGETS)[number], EngineId> = {
  "llama-server": "llama-server",
  "ggml-rpc-server": "ggml-rpc-server",
  "llama-bench": "llama-bench",
};

/**
 * The finished build of this id, when its engine.json is valid and every binary it lists is there
 * with its recorded size; undefined otherwise (never throws).
 */
export async function finishedBuild(enginesDir: string, id: string): Promise<EngineBuildRecord | undefined> {
  const p = llamaCppPaths(enginesDir, id);
  try {
    const record = await readRecord(p.record, EngineBuildRecord);
    if (!record) return undefined;
    for (const b of record.binaries) {
      const s = await stat(join(p.install, b.file));
      if (s.size !== b.size_bytes) return undefined;
    }
    return record;
  } catch {
    return undefined;
  }
}

/**
 * The finished build of the llama.cpp that the installed node-llama-cpp ships, for `backend`
 * (default cpu), in `enginesDir`; undefined when there is none (or node-llama-cpp is missing).
 */
export async function currentBuild(
  enginesDir: string,
  backend: Backend = "cpu",
): Promise<{ dir: string; record: EngineBuildRecord; bin: (id: EngineId) => string } | undefined> {
  const source = await llamaCppSource().catch(() => undefined);
  if (!source) return undefined;
  const p = llamaCppPaths(enginesDir, buildId(source.commit, backend));
  const record = await finishedBuild(enginesDir, buildId(source.commit, backend));
  if (!record) return undefined;
  return {
    dir: p.install,
    record,
    bin: (id) => join(p.install, record.binaries.find((b) => b.id === id)?.file ?? join("bin", id)),
  };
}

/**
 * `rbee engine build llama.cpp`: builds llama-server, ggml-rpc-server and llama-bench with CMake from
 * the llama.cpp source node-llama-cpp ships (its git bundle), once per backend, into
 * `<engines>/llama.cpp/<commit7>-<backend>/`. A finished build is reused ("cached"); a failed or
 * forced one continues incrementally in its kept work tree `.build-<id>/`.
 *
 * @throws MissingToolError before anything is cloned when cmake, a compiler or git is missing;
 *   MissingToolkitError for a forced backend without its toolkit; BuildStepError (with the log's tail
 *   and path) when a step fails; BuildAbortedError when `signal` aborts.
 */
export async function buildLlamaCpp(o: BuildLlamaCppOptions): Promise<BuildResult[]> {
  const env = o.env ?? process.env;
  const say = (message: string) => o.onEvent?.({ type: "say", message });
  const source = await llamaCppSource();
  say(
    `llama.cpp ${source.commit7}${source.tag ? ` (${source.tag})` : ""}, from node-llama-cpp ${source.nodeLlamaCppVersion}: ${source.bundle}`,
  );
  const plans = await planBackends({ env, forced: o.backends });
  for (const plan of plans.filter((p) => p.backend !== "cpu")) say(plan.reason);
  const chosen = plans.filter((p) => p.build);

  const results: BuildResult[] = [];
  const pending: BackendPlan[] = [];
  for (const plan of chosen) {
    const id = buildId(source.commit, plan.backend);
    const record = o.force ? undefined : await finishedBuild(o.enginesDir, id);
    if (record) {
      const dir = llamaCppPaths(o.enginesDir, id).install;
      say(`already built llama.cpp ${source.commit7} (${plan.backend}) in ${dir} (cached)`);
      results.push({ id, backend: plan.backend, dir, cached: true, record });
    } else pending.push(plan);
  }

  if (pending.length > 0) {
    const tools = await findToolchain(env);
    const needsClone = pending.some(
      (p) => !sourceCloned(llamaCppPaths(o.enginesDir, buildId(source.commit, p.backend))),
    );
    const missing: ToolName[] = [];
    if (!tools.cmake) missing.push("cmake");
    if (!tools.cxx) missing.push("cxx");
    if (needsClone && !tools.git) missing.push("git");
    if (missing.length > 0) throw new MissingToolError(missing);
    say(
      `toolchain: ${tools.cmake!.version} (${tools.cmake!.path}), ${tools.cxx!.version} (${tools.cxx!.path})${tools.git ? `, ${tools.git.version}` : ""}`,
    );
    for (const plan of pending) {
      results.push(await buildOne(o, env, source, tools, plan.backend));
    }
  }

  if (o.clean) {
    for (const r of results) {
      const work = llamaCppPaths(o.enginesDir, r.id).work;
      if (existsSync(work)) {
        await rm(work, { recursive: true, force: true });
        say(`removed the work tree ${work} (a later rebuild starts from scratch)`);
      }
    }
  }
  return results;
}

/** A clone is complete once its top-level CMakeLists.txt is there (clones go to src.tmp, then are renamed). */
function sourceCloned(p: ReturnType<typeof llamaCppPaths>): boolean {
  return existsSync(join(p.src, "CMakeLists.txt"));
}

async function buildOne(
  o: BuildLlamaCppOptions,
  env: NodeJS.ProcessEnv,
  source: LlamaCppSource,
  tools: Toolchain,
  backend: Backend,
): Promise<BuildResult> {
  const id = buildId(source.commit, backend);
  const p = llamaCppPaths(o.enginesDir, id);
  const say = (message: string) => o.onEvent?.({ type: "say", message });
  const progress = (stage: BuildStage, percent?: number, target?: string, goal?: string) =>
    o.onEvent?.({ type: "progress", id, backend, stage, percent, target, goal });
  const output = (line: string) => o.onEvent?.({ type: "output", id, line });

  await mkdir(p.root, { recursive: true });
  const release = await takeLock(p.lock, o.signal, say);
  let log: WriteStream | undefined;
  try {
    // another process may have finished it while this one waited for the lock
    if (!o.force) {
      const record = await finishedBuild(o.enginesDir, id);
      if (record) {
        say(`already built llama.cpp ${source.commit7} (${backend}) in ${p.install} (cached)`);
        return { id, backend, dir: p.install, cached: true, record };
      }
    }
    const started = Date.now();
    await mkdir(p.work, { recursive: true });
    log = createWriteStream(p.log, { flags: "a" });
    const run = (step: string, cmd: string, args: string[], cwd: string, onLine: (line: string) => void) =>
      runLogged(cmd, args, { step, cwd, env, log: log!, logPath: p.log, onLine, signal: o.signal });

    const incremental = existsSync(join(p.build, "CMakeCache.txt"));
    say(
      `building llama.cpp ${source.commit7} (${backend}) in ${p.work}${incremental ? " (incremental: its earlier work tree is reused)" : ""}; log: ${p.log}`,
    );
    if (!sourceCloned(p)) {
      progress("clone");
      const tmp = `${p.src}.tmp`;
      await rm(tmp, { recursive: true, force: true });
      await rm(p.src, { recursive: true, force: true });
      await run("git clone", tools.git!.path, ["clone", "--quiet", source.bundle, tmp], p.work, output);
      await rename(tmp, p.src);
    }
    const flags = cmakeFlags(backend);
    progress("configure");
    await run("cmake (configure)", tools.cmake!.path, ["-S", p.src, "-B", p.build, ...flags], p.work, output);
    progress("compile", 0, undefined, BUILD_TARGETS[0]);
    const jobs = o.jobs ?? availableParallelism();
    let goal = 0;
    await run(
      "cmake --build",
      tools.cmake!.path,
      ["--build", p.build, "--target", ...BUILD_TARGETS, "-j", String(jobs)],
      p.work,
      (line) => {
        output(line);
        const cm = parseCmakeProgress(line);
        if (!cm) return;
        progress("compile", cm.percent, cm.target, BUILD_TARGETS[goal]);
        if (cm.action === "built" && cm.target === BUILD_TARGETS[goal] && goal < BUILD_TARGETS.length - 1) goal++;
      },
    );
    progress("install");
    const record = await install(p, source, tools, backend, flags, started);
    say(
      `built llama.cpp ${source.commit7} (${backend}) in ${formatSeconds(record.duration_ms)}: ${p.install} (version ${record.binaries[0]?.version ?? "unknown"})`,
    );
    return { id, backend, dir: p.install, cached: false, record };
  } finally {
    if (log) await new Promise<void>((resolve) => log!.end(resolve));
    await release();
  }
}

function formatSeconds(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 90 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

/** Copies the binaries out of the build tree into a fresh directory, writes engine.json, then renames it into place. */
async function install(
  p: ReturnType<typeof llamaCppPaths>,
  source: LlamaCppSource,
  tools: Toolchain,
  backend: Backend,
  flags: string[],
  started: number,
): Promise<EngineBuildRecord> {
  const tmp = `${p.install}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(join(tmp, "bin"), { recursive: true });
  const binaries: EngineBuildRecord["binaries"] = [];
  for (const target of BUILD_TARGETS) {
    const from = join(p.build, "bin", target);
    const file = join("bin", target);
    const to = join(tmp, file);
    try {
      await copyFile(from, to);
    } catch (err) {
      throw new BuildStepError("install", null, null, [`${from} was not built (${(err as Error).message})`], p.log);
    }
    await chmod(to, 0o755);
    const probe = await probeVersion(to, 30_000, BIN_FILES[target]);
    if (!probe.ok) throw new BuildStepError("install", null, null, [`${to}: ${probe.error}`], p.log);
    const binary: EngineBuildRecord["binaries"][number] = {
      id: BIN_FILES[target],
      file,
      sha256: await sha256(to),
      size_bytes: (await stat(to)).size,
    };
    if (probe.version !== undefined) binary.version = probe.version;
    binaries.push(binary);
  }
  // ggml-rpc-server prints no version: it is the same build as llama-server's
  const version = binaries.find((b) => b.version !== undefined)?.version;
  for (const b of binaries) b.version ??= version;
  const record: EngineBuildRecord = {
    engine: "llama.cpp",
    id: basename(p.install),
    commit: source.commit,
    tag: source.tag,
    backend,
    cmake_flags: flags,
    targets: [...BUILD_TARGETS],
    source: { bundle: source.bundle, node_llama_cpp_version: source.nodeLlamaCppVersion },
    toolchain: { cmake: tools.cmake?.version, cxx: tools.cxx?.version },
    built_at: new Date().toISOString(),
    duration_ms: Date.now() - started,
    binaries,
  };
  await writeRecord(join(tmp, "engine.json"), record);
  await rm(p.install, { recursive: true, force: true });
  await rename(tmp, p.install);
  return record;
}

async function sha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/**
 * One build per id at a time, across processes: a lock file holding the builder's pid. A lock whose
 * process is gone is taken over; a live one is waited for. Answers the function that releases it.
 */
async function takeLock(path: string, signal: AbortSignal | undefined, say: (m: string) => void) {
  let told = false;
  for (;;) {
    if (signal?.aborted) throw new BuildAbortedError();
    try {
      const fh = await open(path, "wx");
      await fh.writeFile(String(process.pid));
      await fh.close();
      return async () => {
        await unlink(path).catch(() => undefined);
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const holder = Number((await readFile(path, "utf8").catch(() => "")).trim());
    if (!Number.isInteger(holder) || holder <= 0 || !isPidAlive(holder)) {
      await unlink(path).catch(() => undefined); // left by a build that died
      continue;
    }
    if (!told) {
      say(`waiting for another build of the same engine to finish (pid ${holder}, lock ${path})`);
      told = true;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}
