import { readdir, realpath } from "node:fs/promises";
import { join } from "node:path";
import { enginesDir as defaultEnginesDir } from "@rbee/server-kit/client";
import { type Backend, ENGINE_IDS, type EngineId, llamaCppPaths, PATH_NAMES } from "./layout.js";
import { DEFAULT_PROBE_TIMEOUT_MS, VersionProbeCache } from "./probe-version.js";
import { EngineBuildRecord, readRecord } from "./records.js";
import { readAddedEngines } from "./registry.js";
import { whichAll } from "./which.js";

/** One engine binary on this machine, as the hive's worker catalog lists it. */
export interface EngineBinary {
  id: EngineId;
  path: string;
  /** What `--version` says: "7000 (de3ff81)"; null when it could not be read. */
  version: string | null;
  /** built: by `rbee engine build`; added: by `rbee engine add`; path: found on PATH. */
  source: "built" | "added" | "path";
  /** Known for rbee's builds; a binary from elsewhere may have been built for anything. */
  backend?: Backend;
  /** For rbee's builds: "de3ff81-cpu". */
  build_id?: string;
  status: "ok" | "broken";
  /** Why it is broken: missing, not executable, corrupt, or what `--version` said. */
  error?: string;
}

export interface ListEnginesOptions {
  /** PATH is searched from here; process.env by default. */
  env?: NodeJS.ProcessEnv;
  /** Default: `enginesDir(env)` (RBEE_ENGINES_DIR, else <cache>/engines). */
  enginesDir?: string;
  /** Per binary; the probes run concurrently. */
  probeTimeoutMs?: number;
  /** Probe answers are cached here by (path, mtime, size); by default one cache for the process. */
  cache?: VersionProbeCache;
  /** Told about files that could not be read (a corrupt engines.json); the listing goes on without them. */
  onWarning?: (message: string) => void;
}

const processCache = new VersionProbeCache();

interface Candidate {
  id: EngineId;
  path: string;
  source: EngineBinary["source"];
  backend?: Backend;
  build_id?: string;
  /** The version a build record gives, for a binary that does not print its own (ggml-rpc-server). */
  version?: string;
  /** Known to be broken before any probe (a build record that cannot be read). */
  error?: string;
}

/**
 * Every engine binary on this machine: rbee's builds (`<engines>/llama.cpp/<id>/engine.json`), the
 * binaries added with `rbee engine add` (`<engines>/engines.json`), and `llama-server`,
 * `ggml-rpc-server` (or `rpc-server`) and `llama-bench` on PATH. Each is probed with `--version`
 * (concurrently, time-limited, cached by file identity). A binary that is missing, not executable,
 * corrupt or silent is listed as broken with its path and the reason. Never throws.
 *
 * The same file reached twice (a PATH symlink to a build) is listed once, by its first source in the
 * order built, added, path.
 */
export async function listEngines(o: ListEnginesOptions = {}): Promise<EngineBinary[]> {
  const env = o.env ?? process.env;
  const dir = o.enginesDir ?? defaultEnginesDir(env);
  const warn = o.onWarning ?? (() => {});
  const cache = o.cache ?? processCache;
  const candidates = [...(await builtCandidates(dir)), ...(await addedCandidates(dir, warn)), ...pathCandidates(env)];

  const seen = new Set<string>();
  const unique: Candidate[] = [];
  for (const c of candidates) {
    const real = await realpath(c.path).catch(() => c.path);
    const key = `${c.id}\0${real}`;
    if (seen.has(key)) continue;
    seen.add(key);
    unique.push(c);
  }
  return Promise.all(
    unique.map(async (c): Promise<EngineBinary> => {
      const base = {
        id: c.id,
        path: c.path,
        source: c.source,
        ...(c.backend ? { backend: c.backend } : {}),
        ...(c.build_id ? { build_id: c.build_id } : {}),
      };
      if (c.error !== undefined) return { ...base, version: null, status: "broken", error: c.error };
      const probe = await cache.probe(c.path, o.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS, c.id);
      if (probe.ok) return { ...base, version: probe.version ?? c.version ?? null, status: "ok" };
      return { ...base, version: null, status: "broken", error: probe.error };
    }),
  );
}

async function builtCandidates(dir: string): Promise<Candidate[]> {
  const root = llamaCppPaths(dir, "x").root;
  const entries = await readdir(root, { withFileTypes: true }).catch(() => []);
  const found: Candidate[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory() || entry.name.startsWith(".") || entry.name.includes(".tmp-")) continue;
    const p = llamaCppPaths(dir, entry.name);
    let record: EngineBuildRecord | undefined;
    let error: string | undefined;
    try {
      record = await readRecord(p.record, EngineBuildRecord);
      if (!record) error = `${p.record} is missing (an unfinished build? run \`rbee engine build llama.cpp\`)`;
    } catch (err) {
      error = (err as Error).message;
    }
    if (record) {
      for (const b of record.binaries) {
        found.push({
          id: b.id,
          path: join(p.install, b.file),
          source: "built",
          backend: record.backend,
          build_id: record.id,
          version: b.version,
        });
      }
      continue;
    }
    // a build directory without a readable record: list what binaries it has, as broken
    const bins = await readdir(p.bin).catch(() => [] as string[]);
    const backend = /-(cpu|cuda|vulkan|metal)$/.exec(entry.name)?.[1] as Backend | undefined;
    for (const id of ENGINE_IDS) {
      if (!bins.includes(id)) continue;
      found.push({ id, path: join(p.bin, id), source: "built", backend, build_id: entry.name, error });
    }
  }
  return found;
}

async function addedCandidates(dir: string, warn: (m: string) => void): Promise<Candidate[]> {
  try {
    return (await readAddedEngines(dir)).map((e) => ({
      id: e.id,
      path: e.path,
      source: "added" as const,
      version: e.version,
    }));
  } catch (err) {
    warn((err as Error).message);
    return [];
  }
}

function pathCandidates(env: NodeJS.ProcessEnv): Candidate[] {
  const found: Candidate[] = [];
  for (const id of ENGINE_IDS) {
    for (const name of PATH_NAMES[id]) {
      const first = whichAll(name, env)[0]; // what a shell would run; the rest are shadowed
      if (first) found.push({ id, path: first, source: "path" });
    }
  }
  return found;
}

const SOURCE_RANK: Record<EngineBinary["source"], number> = { added: 0, built: 1, path: 2 };

/**
 * The binary to run for `id`: only working ones; with `backend`, one built for it, else one whose
 * backend is unknown (added or on PATH). A binary the user added is preferred over rbee's own build,
 * which is preferred over one found on PATH.
 */
export function bestEngine(list: readonly EngineBinary[], id: EngineId, backend?: Backend): EngineBinary | undefined {
  const usable = list.filter(
    (e) =>
      e.id === id && e.status === "ok" && (backend === undefined || e.backend === undefined || e.backend === backend),
  );
  const score = (e: EngineBinary) => (backend !== undefined && e.backend === backend ? 0 : 10) + SOURCE_RANK[e.source];
  return usable.sort((a, b) => score(a) - score(b))[0];
}
