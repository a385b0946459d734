import { RbeeError } from "@rbee/contract";
import type { HfFile } from "./hf-client.js";
import { HfNotFoundError } from "./hf-errors.js";
import { QUANT_PREFERENCE, quantKind, quantOfFileName } from "./quant.js";

/** The file(s) of one model in a repo, and why they were chosen. */
export interface GgufPick {
  /** One file, or every part of a split model in order (`…-00001-of-00003.gguf` first). */
  files: HfFile[];
  /** The quantization the file name states ("Q4_K_M"), undefined when it states none. */
  quant: string | undefined;
  /** In words: which file was picked and why, and what else the repo has. */
  reason: string;
}

export interface PickGgufOptions {
  /** The file asked for (a split model's first part brings the others); it must be in the list. */
  path?: string;
  /** The quantization asked for ("Q8_0"), when no file was named. */
  quant?: string;
  /** The repo, for messages. */
  repo?: string;
}

/** A repo that holds no GGUF model file (or not the quantization asked for). */
export class NoGgufError extends RbeeError {
  constructor(message: string, details: Record<string, unknown>) {
    super(message, { statusCode: 404, code: "gguf_not_found", details });
  }
}

/** A candidate model: a single file, or a complete split set. */
interface Candidate {
  files: HfFile[];
  /** The first file's path: how the model is named. */
  name: string;
  quant: string | undefined;
  size: number;
}

const SPLIT = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/i;
/** Vision projectors, importance matrices and other GGUFs that are not a language model on their own. */
const NOT_A_MODEL = /(^|[-_./])(mmproj|imatrix|projector|vision[-_]?encoder|clip)([-_./]|$)/i;

/**
 * Chooses the GGUF model in a repo's file list: groups split GGUFs (`name-00001-of-00003.gguf`
 * and its parts) into one model, skips vision projectors (mmproj) and importance matrices, and
 * prefers a common 4- or 8-bit quant in QUANT_PREFERENCE's order (Q4_K_M, Q4_K_S, Q4_K_XL, Q5_K_M,
 * Q5_K_S, Q8_0, Q4_0, IQ4_XS, …, F16, BF16, F32); among files of the same quant, the one with the
 * shortest path. With `path` it answers that file (and its other parts); with `quant`, that quant.
 *
 * @throws NoGgufError when the repo holds no GGUF model (listing what it holds), or not the quant
 *   asked for; HfNotFoundError when the named file is not there or a part of a split model is missing.
 */
export function pickGguf(files: readonly HfFile[], options: PickGgufOptions = {}): GgufPick {
  const repo = options.repo ?? "the repo";
  const { candidates, incomplete } = candidatesOf(files);

  if (options.path !== undefined) {
    const wanted = options.path;
    const split = SPLIT.exec(wanted);
    const key = split ? `${split[1]}|${split[3]}` : wanted;
    const hit = candidates.find((c) => keyOf(c.name) === key);
    if (hit) {
      const parts =
        hit.files.length > 1 ? ` and its ${hit.files.length - 1} other part${hit.files.length > 2 ? "s" : ""}` : "";
      return {
        files: hit.files,
        quant: hit.quant,
        reason: `using ${hit.name}${parts} (${hit.quant ?? "quantization not in the name"}), as asked`,
      };
    }
    const exact = files.find((f) => f.path === wanted);
    if (exact && !split) {
      // named explicitly, even if it does not look like a model (a projector, say)
      return { files: [exact], quant: quantOfFileName(wanted), reason: `using ${wanted}, as asked` };
    }
    const broken = incomplete.find((g) => g.key === key);
    if (broken) {
      throw new HfNotFoundError(
        `${repo} has ${wanted} but not all of its parts: missing ${broken.missing.join(", ")}`,
        "file",
        options.repo ?? "",
        wanted,
      );
    }
    const there = candidates.map((c) => c.name);
    throw new HfNotFoundError(
      `${repo} has no file ${wanted}${there.length > 0 ? `; its GGUF models: ${list(there)}` : ""}`,
      "file",
      options.repo ?? "",
      wanted,
    );
  }

  if (candidates.length === 0) {
    const names = files.map((f) => f.path);
    const projectors = names.filter((n) => /\.gguf$/i.test(n));
    throw new NoGgufError(
      `${repo} holds no GGUF model file${projectors.length > 0 ? ` (only ${list(projectors)}, which are not models on their own)` : ""}; it holds: ${list(names) || "nothing"}. Choose a repo with GGUF files (often named <model>-GGUF) or convert the model to GGUF`,
      { files: names },
    );
  }

  const rank = (c: Candidate) => {
    const i = c.quant === undefined ? -1 : QUANT_PREFERENCE.indexOf(c.quant);
    return i < 0 ? QUANT_PREFERENCE.length : i;
  };
  const ordered = [...candidates].sort(
    (a, b) =>
      rank(a) - rank(b) ||
      a.name.split("/").length - b.name.split("/").length ||
      a.name.length - b.name.length ||
      a.name.localeCompare(b.name),
  );
  const quantsThere = [...new Set(ordered.map((c) => c.quant ?? "unnamed"))];

  let chosen: Candidate;
  let why: string;
  if (options.quant !== undefined) {
    const q = options.quant.toUpperCase();
    const hit = ordered.find((c) => c.quant === q);
    if (!hit) {
      throw new NoGgufError(`${repo} has no ${q} GGUF; it has ${list(quantsThere)}`, { quant: q, quants: quantsThere });
    }
    chosen = hit;
    why = `${q}, as asked`;
  } else {
    chosen = ordered[0] as Candidate;
    const q = chosen.quant;
    if (candidates.length === 1) why = `${q ?? "quantization not in the name"}, the only GGUF model in the repo`;
    else if (q === undefined) why = "no file name states a known quantization; the smallest path";
    else if (rank(chosen) === 0) why = `${q}, the preferred ${quantKind(q)} quant`;
    else if (quantKind(q) === "unquantized") why = `${q}: no 4- or 8-bit quant in the repo`;
    else why = `${q}, the most preferred ${quantKind(q)} quant here`;
  }
  const others = quantsThere.filter((q) => q !== (chosen.quant ?? "unnamed"));
  const parts =
    chosen.files.length > 1
      ? ` and its ${chosen.files.length - 1} other part${chosen.files.length > 2 ? "s" : ""}`
      : "";
  const also = others.length > 0 ? `; also there: ${list(others)}` : "";
  return { files: chosen.files, quant: chosen.quant, reason: `picked ${chosen.name}${parts} (${why}${also})` };
}

/** Single GGUFs and complete split sets; split sets with missing parts set aside. */
function candidatesOf(files: readonly HfFile[]): {
  candidates: Candidate[];
  incomplete: Array<{ key: string; missing: string[] }>;
} {
  const candidates: Candidate[] = [];
  const groups = new Map<string, { prefix: string; total: number; parts: Map<number, HfFile> }>();
  for (const f of files) {
    if (!/\.gguf$/i.test(f.path)) continue;
    const base = f.path.split("/").at(-1) ?? f.path;
    if (NOT_A_MODEL.test(base)) continue;
    const split = SPLIT.exec(f.path);
    if (!split) {
      candidates.push({ files: [f], name: f.path, quant: quantOfFileName(f.path), size: f.size });
      continue;
    }
    const [, prefix = "", no = "0", total = "0"] = split;
    const key = `${prefix}|${total}`;
    let g = groups.get(key);
    if (!g) {
      g = { prefix, total: Number(total), parts: new Map() };
      groups.set(key, g);
    }
    g.parts.set(Number(no), f);
  }
  const incomplete: Array<{ key: string; missing: string[] }> = [];
  for (const [key, g] of groups) {
    const parts: HfFile[] = [];
    const missing: string[] = [];
    for (let i = 1; i <= g.total; i++) {
      const part = g.parts.get(i);
      if (part) parts.push(part);
      else missing.push(`${g.prefix}-${String(i).padStart(5, "0")}-of-${String(g.total).padStart(5, "0")}.gguf`);
    }
    if (missing.length > 0 || g.total === 0) {
      incomplete.push({ key, missing });
      continue;
    }
    const first = parts[0] as HfFile;
    candidates.push({
      files: parts,
      name: first.path,
      quant: quantOfFileName(first.path),
      size: parts.reduce((n, p) => n + p.size, 0),
    });
  }
  return { candidates, incomplete };
}

function keyOf(name: string): string {
  const split = SPLIT.exec(name);
  return split ? `${split[1]}|${split[3]}` : name;
}

/** "a, b, c" (at most 12, then "and N more"). */
function list(items: readonly string[]): string {
  if (items.length <= 12) return items.join(", ");
  return `${items.slice(0, 12).join(", ")} and ${items.length - 12} more`;
}
