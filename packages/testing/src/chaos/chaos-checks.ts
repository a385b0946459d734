import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { getJson } from "../http.js";
import { STORIES_SHA256 } from "../paths.js";
import { CHAOS_MARKER, type ChaosCluster } from "./chaos-cluster.js";

/** The processes of this run (CHAOS_MARKER=<run> in their environment), from /proc (Linux). */
export function markedProcesses(marker: string): Map<number, string> {
  const found = new Map<number, string>();
  const needle = `${CHAOS_MARKER}=${marker}\0`;
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (!`${readFileSync(`/proc/${name}/environ`, "latin1")}\0`.includes(needle)) continue;
      const state = /^State:\s+(\S)/m.exec(readFileSync(`/proc/${name}/status`, "utf8"))?.[1];
      if (state === "Z") continue; // exited, not yet reaped by its parent
      const cmd = readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0").join(" ").trim();
      found.set(Number(name), cmd.slice(0, 160));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

/** Every pid the queen or a hive knows: the queen, the hives, the workers they report, and each hive's spare. */
export async function knownPids(c: ChaosCluster): Promise<Set<number>> {
  const known = new Set<number>([c.queen.child.pid, ...c.hives.map((h) => h.group.pid)]);
  const cluster = await getJson<{ workers?: Array<{ pid: number | null }> }>(`${c.queenUrl}/v1/cluster`, c.token);
  for (const w of cluster.body.workers ?? []) if (w.pid) known.add(w.pid);
  for (const h of c.hives) {
    const r = await getJson<{ workers?: Array<{ pid?: number | null }>; spare_pid?: number | null }>(
      `${c.hiveUrl(h)}/v1/workers`,
      c.token,
    );
    for (const w of r.body.workers ?? []) if (w.pid) known.add(w.pid);
    // a hive's spare llm worker process (RBEE_SPARE_WORKER), waiting for a model: known, serving nothing
    if (r.body.spare_pid) known.add(r.body.spare_pid);
  }
  return known;
}

/** Processes of the run that neither the queen nor any hive knows, as "pid command". */
export async function unknownProcesses(c: ChaosCluster): Promise<string[]> {
  const known = await knownPids(c);
  return [...markedProcesses(c.marker)].filter(([pid]) => !known.has(pid)).map(([pid, cmd]) => `${pid} ${cmd}`);
}

/**
 * What the cluster must be back to after a fault: every hive live, every model's minimum met by
 * routable workers, and no process of the run that nothing knows. Returns what is still missing.
 */
export async function convergenceGaps(c: ChaosCluster, model: string, replicas: number): Promise<string[]> {
  const gaps: string[] = [];
  const cluster = await getJson<{
    hives?: Array<{ id: string; state: string }>;
    workers?: Array<{ model: string; routable: boolean; status: string }>;
    minimums?: Array<{ model: string; replicas: number; running: number }>;
  }>(`${c.queenUrl}/v1/cluster`, c.token);
  if (cluster.status !== 200) return [`GET /v1/cluster answered ${cluster.status}`];
  for (const h of c.hives) {
    const state = cluster.body.hives?.find((x) => x.id === h.id)?.state ?? "unknown to the queen";
    if (state !== "live") gaps.push(`hive ${h.id} is ${state}`);
  }
  const routable = (cluster.body.workers ?? []).filter(
    (w) => w.model === model && w.routable && w.status !== "Starting",
  );
  if (routable.length < replicas) gaps.push(`${routable.length}/${replicas} routable workers of ${model}`);
  const minimum = cluster.body.minimums?.find((m) => m.model === model);
  if (!minimum) gaps.push(`the minimum of ${model} is gone`);
  const unknown = await unknownProcesses(c);
  if (unknown.length > 0) gaps.push(`processes nobody knows: ${unknown.join("; ")}`);
  return gaps;
}

interface CatalogFile {
  path: string;
  size_bytes: number;
  sha256?: string;
}

/**
 * Every model a hive's catalog reports Available has all its files, of the recorded size, whose
 * sha256 is the one recorded and the one the run knows (every model of a chaos run is stories260K
 * under some name). Returns the violations.
 */
export function catalogViolations(c: ChaosCluster): { checked: number; violations: string[] } {
  const violations: string[] = [];
  let checked = 0;
  for (const h of c.hives) {
    const models = join(h.cacheDir, "models");
    if (!existsSync(models)) continue;
    for (const id of readdirSync(models)) {
      const metaPath = join(models, id, "metadata.json");
      if (!existsSync(metaPath)) continue;
      let artifact: { status?: string; files?: CatalogFile[] };
      try {
        artifact = (JSON.parse(readFileSync(metaPath, "utf8")) as { artifact: typeof artifact }).artifact;
      } catch (err) {
        violations.push(`${h.id}: ${metaPath} is not JSON: ${(err as Error).message}`);
        continue;
      }
      if (artifact.status !== "Available") continue;
      checked++;
      if (!artifact.files?.length) violations.push(`${h.id}: ${id} is Available without files`);
      for (const f of artifact.files ?? []) {
        const path = isAbsolute(f.path) ? f.path : join(models, id, f.path);
        if (!existsSync(path)) {
          violations.push(`${h.id}: ${id} is Available but ${path} is missing`);
          continue;
        }
        const size = statSync(path).size;
        const sha = createHash("sha256").update(readFileSync(path)).digest("hex");
        if (size !== f.size_bytes)
          violations.push(`${h.id}: ${id} is Available, ${path} has ${size} of ${f.size_bytes} bytes`);
        if (f.sha256 !== undefined && sha !== f.sha256)
          violations.push(`${h.id}: ${id} is Available, ${path}'s sha256 is ${sha}, its catalog says ${f.sha256}`);
        if (sha !== STORIES_SHA256)
          violations.push(`${h.id}: ${id} is Available, ${path}'s sha256 is ${sha}, not the model's ${STORIES_SHA256}`);
      }
    }
  }
  return { checked, violations };
}

/** What the run created and must never lose: API keys (by id, and that each still works), minimums, hives.conf entries. */
export interface Durables {
  keys: Array<{ id: string; key: string }>;
  model: string;
  replicas: number;
  hivesConf: string[];
}

export async function durabilityViolations(c: ChaosCluster, d: Durables): Promise<string[]> {
  const violations: string[] = [];
  const keys = await getJson<{ keys?: Array<{ id: string }> }>(`${c.queenUrl}/v1/keys`, c.token);
  const listed = new Set((keys.body.keys ?? []).map((k) => k.id));
  for (const k of d.keys) {
    if (!listed.has(k.id)) violations.push(`API key ${k.id} is no longer listed`);
    const r = await getJson(`${c.queenUrl}/v1/models`, k.key);
    if (r.status !== 200) violations.push(`API key ${k.id} no longer works: GET /v1/models answered ${r.status}`);
  }
  const cluster = await getJson<{ minimums?: Array<{ model: string; replicas: number }> }>(
    `${c.queenUrl}/v1/cluster`,
    c.token,
  );
  const minimum = cluster.body.minimums?.find((m) => m.model === d.model);
  if (minimum?.replicas !== d.replicas)
    violations.push(`the minimum of ${d.model} is ${minimum ? minimum.replicas : "gone"}, not ${d.replicas}`);
  const conf = join(c.dirs.configDir, "hives.conf");
  const text = existsSync(conf) ? readFileSync(conf, "utf8") : "";
  for (const alias of d.hivesConf)
    if (!new RegExp(`^Host\\s+${alias}\\s*$`, "m").test(text)) violations.push(`hives.conf lost the entry ${alias}`);
  return violations;
}
