import { createHash } from "node:crypto";
import { mkdir, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { REPO_ROOT } from "../paths.js";
import {
  type LlamaGgufConfig,
  type LlamaGgufLayout,
  llamaGgufLayout,
  type ResolvedLlamaGgufConfig,
  resolveLlamaGgufConfig,
  type WrittenLlamaGguf,
  writeLlamaGguf,
} from "./write-llama-gguf.js";

/** Options of the sized generators: everything but the shape, which they choose. */
export interface SizedLlamaGgufOptions
  extends Omit<LlamaGgufConfig, "nEmbd" | "nLayers" | "nHead" | "nHeadKv" | "nFf"> {
  /** Query heads per key/value head (grouped-query attention); must divide the head count. Default 1. */
  gqa?: number;
  /** Largest accepted |fileBytes - targetBytes| / targetBytes. Default 0.05. */
  tolerance?: number;
}

/** A shape chosen for a target size, and the exact layout it gives. */
export interface LlamaGgufPlan {
  config: ResolvedLlamaGgufConfig;
  layout: LlamaGgufLayout;
  targetBytes: number;
}

/** Head size of the sized models (llama's). */
export const SIZED_HEAD_DIM = 64;

/** The embedding width : depth ratio the sized models aim at (TinyLlama is 93, Llama-7B 128, SmolLM ~20-30). */
const PREFERRED_WIDTH_PER_LAYER = 64;

/**
 * Chooses a llama shape whose file is within `tolerance` (5%) of `targetBytes`, without writing
 * anything: nEmbd a multiple of 64 with 64-wide heads, nFf = 2.75 × nEmbd rounded to a multiple of
 * 32, and as many layers as the size needs. Among the shapes within the tolerance it weighs the
 * distance to the target against the distance from 64 embedding columns per layer (a plausible
 * small-model aspect: 1 GiB comes out about 1408 wide and 22 deep).
 */
export function planLlamaGgufOfSize(targetBytes: number, options: SizedLlamaGgufOptions = {}): LlamaGgufPlan {
  const { gqa = 1, tolerance = 0.05, ...rest } = options;
  if (!(targetBytes > 0)) throw new Error(`targetBytes must be positive, got ${targetBytes}`);
  if (!Number.isInteger(gqa) || gqa < 1) throw new Error(`gqa must be a positive integer, got ${gqa}`);
  if (!(tolerance > 0)) throw new Error(`tolerance must be positive, got ${tolerance}`);
  type Candidate = { config: LlamaGgufConfig; bytes: number; error: number };
  const candidates: Candidate[] = [];
  for (let nEmbd = SIZED_HEAD_DIM; ; nEmbd += SIZED_HEAD_DIM) {
    const nHead = nEmbd / SIZED_HEAD_DIM;
    if (nHead % gqa !== 0) continue;
    const shape = (nLayers: number): LlamaGgufConfig => ({
      ...rest,
      nEmbd,
      nHead,
      nHeadKv: nHead / gqa,
      nFf: Math.max(32, Math.round((nEmbd * 2.75) / 32) * 32),
      nLayers,
    });
    const one = llamaGgufLayout(shape(1)).fileBytes;
    if (one > targetBytes * (1 + tolerance)) break;
    const perLayer = llamaGgufLayout(shape(2)).fileBytes - one;
    const guess = Math.max(1, 1 + Math.round((targetBytes - one) / perLayer));
    for (const nLayers of [guess - 1, guess, guess + 1]) {
      if (nLayers < 1) continue;
      // linear in the depth up to a few header bytes (longer tensor names past blk.9); checked exactly below
      const bytes = one + (nLayers - 1) * perLayer;
      candidates.push({ config: shape(nLayers), bytes, error: Math.abs(bytes - targetBytes) / targetBytes });
    }
  }
  // within the tolerance, trade closeness to the target against a plausible aspect
  const score = (c: Candidate) =>
    (2 * c.error) / tolerance + Math.abs(Math.log(c.config.nEmbd / c.config.nLayers / PREFERRED_WIDTH_PER_LAYER));
  const best = candidates
    .filter((c) => c.error <= tolerance)
    .reduce<Candidate | undefined>((a, b) => (!a || score(b) < score(a) ? b : a), undefined);
  const config = best && resolveLlamaGgufConfig(best.config);
  const layout = config && llamaGgufLayout(config);
  if (!config || !layout || Math.abs(layout.fileBytes - targetBytes) / targetBytes > tolerance) {
    throw new Error(`no llama shape lands within ${tolerance * 100}% of ${targetBytes} bytes`);
  }
  return { config, layout, targetBytes };
}

/**
 * Writes a random-weight llama GGUF of about `targetBytes` (within the tolerance, 5% by default)
 * to `path`; see planLlamaGgufOfSize for how the shape is chosen.
 */
export async function generateLlamaGgufOfSize(
  path: string,
  targetBytes: number,
  options: SizedLlamaGgufOptions = {},
): Promise<WrittenLlamaGguf & { targetBytes: number }> {
  const { config } = planLlamaGgufOfSize(targetBytes, options);
  const written = await writeLlamaGguf({ ...config, path });
  return { ...written, targetBytes };
}

/** Options of cachedGeneratedModel. */
export interface CachedModelOptions extends SizedLlamaGgufOptions {
  /** The cache directory. Default `<repo>/.cache/models` (git-ignored). */
  dir?: string;
}

/** A generated model in the cache. */
export interface CachedModel extends LlamaGgufPlan {
  path: string;
  /** Whether this call wrote the file (false: an earlier run's file was reused). */
  generated: boolean;
}

/** The default directory of generated models. */
export const GENERATED_MODEL_DIR = join(REPO_ROOT, ".cache/models");

/**
 * Bumped whenever the generator's output for a given config changes, so cached files made by an
 * older version (same size, other bytes) are not reused.
 */
const GENERATOR_VERSION = 1;

const inFlight = new Map<string, Promise<CachedModel>>();

/**
 * A random-weight llama GGUF of about `targetBytes`, generated once into the cache directory and
 * reused afterwards while a file of the expected size is there. The file is written under a
 * unique `.part` name and renamed when complete, so an interrupted generation never leaves a file
 * that looks finished (and concurrent processes at worst both write it).
 */
export async function cachedGeneratedModel(
  targetBytes: number,
  options: CachedModelOptions = {},
): Promise<CachedModel> {
  const { dir = GENERATED_MODEL_DIR, ...sizing } = options;
  const plan = planLlamaGgufOfSize(targetBytes, sizing);
  const c = plan.config;
  const hash = createHash("sha256")
    .update(JSON.stringify({ GENERATOR_VERSION, ...c }))
    .digest("hex")
    .slice(0, 10);
  const path = join(dir, `random-llama-${c.nEmbd}x${c.nLayers}-${c.tensorType}-${hash}.gguf`);

  let pending = inFlight.get(path);
  if (!pending) {
    pending = ensureGenerated(path, plan).finally(() => inFlight.delete(path));
    inFlight.set(path, pending);
  }
  return pending;
}

async function ensureGenerated(path: string, plan: LlamaGgufPlan): Promise<CachedModel> {
  const existing = await stat(path).catch(() => undefined);
  if (existing?.isFile() && existing.size === plan.layout.fileBytes) return { ...plan, path, generated: false };

  await mkdir(dirname(path), { recursive: true });
  const part = `${path}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.part`;
  try {
    await writeLlamaGguf({ ...plan.config, path: part });
    await rename(part, path);
  } catch (err) {
    await rm(part, { force: true });
    throw err;
  }
  return { ...plan, path, generated: true };
}
