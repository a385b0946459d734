import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { ENGINE_IDS, type EngineId, isEngineId, REGISTRY_FILE } from "./layout.js";
import { DEFAULT_PROBE_TIMEOUT_MS, probeVersion } from "./probe-version.js";
import { type AddedEngine, EngineRegistryFile, readRecord, writeRecord } from "./records.js";

/** An engine id that is not one of {@link ENGINE_IDS}. */
export class UnknownEngineError extends Error {
  constructor(readonly id: string) {
    super(`unknown engine '${id}': the engines are ${ENGINE_IDS.join(", ")}`);
    this.name = "UnknownEngineError";
  }
}

/** `rbee engine add` refused a binary: its path, and why (the OS error, or what `--version` said). */
export class EngineRefusedError extends Error {
  constructor(
    readonly id: EngineId,
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${path} cannot be used as ${id}: ${reason}`);
    this.name = "EngineRefusedError";
  }
}

/** The binaries added with `rbee engine add` (an absent file is an empty list). */
export async function readAddedEngines(enginesDir: string): Promise<AddedEngine[]> {
  return (await readRecord(join(enginesDir, REGISTRY_FILE), EngineRegistryFile))?.engines ?? [];
}

export interface AddEngineOptions {
  enginesDir: string;
  id: string;
  /** Resolved against the current directory; kept as given otherwise (a symlink stays a symlink). */
  path: string;
  timeoutMs?: number;
}

/**
 * Registers a binary the user already has, after checking that it exists, is executable and answers
 * `--version` like a llama.cpp binary (ggml-rpc-server, which has no `--version`, by its usage text; ollama by its "ollama version is" line). Adding the same path again updates its version.
 *
 * @throws UnknownEngineError, EngineRefusedError (with the path and the reason), RecordFileError
 *   when engines.json is corrupt (it is never overwritten then).
 */
export async function addEngine(o: AddEngineOptions): Promise<AddedEngine> {
  if (!isEngineId(o.id)) throw new UnknownEngineError(o.id);
  const path = resolve(o.path);
  const probe = await probeVersion(path, o.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS, o.id);
  if (!probe.ok) throw new EngineRefusedError(o.id, path, probe.error);
  const engines = await readAddedEngines(o.enginesDir);
  const entry: AddedEngine = { id: o.id, path, added_at: new Date().toISOString() };
  if (probe.version !== undefined) entry.version = probe.version;
  const kept = engines.filter((e) => !(e.id === o.id && e.path === path));
  await mkdir(o.enginesDir, { recursive: true });
  await writeRecord(join(o.enginesDir, REGISTRY_FILE), { engines: [...kept, entry] });
  return entry;
}

/**
 * Unregisters added binaries: the one at `path`, or every one of this id. Answers what was removed
 * (empty when nothing matched). The files themselves are left alone.
 */
export async function removeEngine(o: { enginesDir: string; id: string; path?: string }): Promise<AddedEngine[]> {
  if (!isEngineId(o.id)) throw new UnknownEngineError(o.id);
  const engines = await readAddedEngines(o.enginesDir);
  const path = o.path === undefined ? undefined : resolve(o.path);
  const matches = (e: AddedEngine) => e.id === o.id && (path === undefined || e.path === path);
  const removed = engines.filter(matches);
  if (removed.length > 0) {
    await writeRecord(join(o.enginesDir, REGISTRY_FILE), { engines: engines.filter((e) => !matches(e)) });
  }
  return removed;
}
