import { createHash } from "node:crypto";
import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { ValidationError } from "@rbee/contract";
import { isQuantName } from "./hf/quant.js";
import { repoIdProblem, repoPathProblem, revisionProblem } from "./hf/repo-names.js";
import { findShortName, SHORT_MODEL_NAMES } from "./hf/short-names.js";
import { isModelId, modelIdFromFileName } from "./model-id.js";

/** A model on the Hugging Face Hub: a repo at a revision, and a file in it when one was named. */
export interface HfModelRef {
  kind: "hf";
  /** `owner/name`, as Hugging Face spells it. */
  repo: string;
  /** A branch, tag or commit; "main" when none was given. */
  revision: string;
  /** The GGUF file in the repo (the first part of a split model); absent: the hive picks one (pickGguf). */
  path?: string;
  /** A quantization asked for instead of a file (`owner/repo:Q4_K_M`); pickGguf honours it. */
  quant?: string;
  /** The short name this reference was expanded from. */
  shortName?: string;
}

/** What a model reference names. */
export type ModelRef =
  | HfModelRef
  | {
      kind: "local";
      /** Absolute path of a GGUF file on this machine. */
      path: string;
    }
  | {
      kind: "id";
      /** A catalog id (lower case). */
      id: string;
    };

export interface ParseModelRefOptions {
  /** Where relative paths start. Default process.cwd(). */
  cwd?: string;
  /** What `~` stands for. Default os.homedir(). */
  home?: string;
  /** An HF_ENDPOINT whose URLs are accepted besides huggingface.co and hf.co. */
  endpoint?: string;
}

const FORMS =
  "use owner/repo, owner/repo:path/file.gguf, owner/repo@revision:file.gguf, hf://owner/repo/file.gguf@revision, a https://huggingface.co/owner/repo/resolve/main/file.gguf URL, a .gguf path on this machine, a catalog id, or a short name";

function refError(ref: string, why: string): ValidationError {
  const names = SHORT_MODEL_NAMES.map((s) => s.name).join(", ");
  return new ValidationError(`'${ref}' is not a model reference: ${why}; ${FORMS} (${names})`, "model", { ref });
}

/**
 * Reads a model reference, in any of these forms:
 *
 * - `owner/repo:path/in/repo.gguf` (revision "main"), `owner/repo@rev:path/in/repo.gguf`;
 *   `owner/repo:Q4_K_M` asks for a quantization instead of a file;
 * - `owner/repo`, `owner/repo@rev`: a repo, whose GGUF the hive picks (pickGguf);
 * - `hf.co/owner/repo[:QUANT]` (Ollama's spelling);
 * - `hf://owner/repo/path/in/repo.gguf@rev`, `hf://owner/repo@rev/path.gguf`, `hf://owner/repo`;
 * - `https://huggingface.co/owner/repo/resolve/<rev>/<path>` (also `/blob/`, `/tree/<rev>`, the
 *   repo page, hf.co, and the host of `options.endpoint`);
 * - a local path: absolute, `./x.gguf`, `../x.gguf`, `~/x.gguf`, or any other name ending in
 *   `.gguf` without a ':' (relative to `options.cwd`);
 * - a short name from SHORT_MODEL_NAMES (any case), expanded to its Hugging Face file;
 * - a catalog id (any case; a-z, 0-9, '.', '_', '-').
 *
 * Repo ids follow Hugging Face's rules, revisions are `[A-Za-z0-9._/-]` without '..', and a file
 * path in a repo is relative with no '..', '.' or empty part and no backslash.
 *
 * @throws ValidationError saying what is wrong and which forms are accepted.
 */
export function parseModelRef(ref: string, options: ParseModelRefOptions = {}): ModelRef {
  const text = ref.trim();
  if (text === "") throw refError(ref, "it is empty");
  if (/[\u0000-\u001f\u007f]/.test(text)) throw refError(ref, "it contains control characters");

  if (/^hf:\/\//i.test(text)) return parseHfUrl(ref, text.slice(5));
  if (/^https?:\/\//i.test(text)) return parseHttpUrl(ref, text, options.endpoint);

  const home = options.home ?? homedir();
  const cwd = options.cwd ?? process.cwd();
  if (text === "~" || text.startsWith("~/")) return { kind: "local", path: join(home, text.slice(1)) };
  if (isAbsolute(text)) return { kind: "local", path: resolve(text) };
  if (text.startsWith("./") || text.startsWith("../") || text === "." || text === "..") {
    return { kind: "local", path: resolve(cwd, text) };
  }

  // Ollama's spelling: hf.co/owner/repo[:QUANT]
  const bare = text.replace(/^(?:hf\.co|huggingface\.co)\//i, "");
  const colon = bare.indexOf(":");
  if (colon >= 0) return parseRepoAndFile(ref, bare.slice(0, colon), bare.slice(colon + 1));
  if (bare !== text) return parseRepoAndFile(ref, bare, undefined);
  if (/\.gguf$/i.test(text)) return { kind: "local", path: resolve(cwd, text) };
  if (text.includes("/")) return parseRepoAndFile(ref, text, undefined);

  const short = findShortName(text);
  if (short) {
    return { kind: "hf", repo: short.repo, revision: short.revision, path: short.path, shortName: short.name };
  }
  const id = text.toLowerCase();
  if (isModelId(id)) return { kind: "id", id };
  throw refError(ref, `'${text}' is neither a short name nor a catalog id`);
}

/** `owner/repo[@rev]` and what follows the ':' (a file path or a quant), if anything. */
function parseRepoAndFile(ref: string, repoPart: string, filePart: string | undefined): HfModelRef {
  const at = repoPart.indexOf("@");
  const repo = at >= 0 ? repoPart.slice(0, at) : repoPart;
  const revision = at >= 0 ? repoPart.slice(at + 1) : "main";
  return hfRef(ref, repo, revision, filePart);
}

function hfRef(ref: string, repo: string, revision: string, file: string | undefined): HfModelRef {
  const repoProblem = repoIdProblem(repo);
  if (repoProblem) throw refError(ref, repoProblem);
  const revProblem = revisionProblem(revision);
  if (revProblem) throw refError(ref, revProblem);
  const out: HfModelRef = { kind: "hf", repo, revision };
  if (file === undefined || file === "") {
    if (file === "") throw refError(ref, "nothing follows the ':'; name a .gguf file in the repo");
    return out;
  }
  if (!/\.gguf$/i.test(file)) {
    if (isQuantName(file)) return { ...out, quant: file.toUpperCase() };
    throw refError(ref, `'${file}' is not a .gguf file (nor a quantization such as Q4_K_M)`);
  }
  const pathProblem = repoPathProblem(file);
  if (pathProblem) throw refError(ref, pathProblem);
  return { ...out, path: file };
}

/** `hf://owner/repo[@rev][/path.gguf][@rev]` (after the scheme). */
function parseHfUrl(ref: string, body: string): HfModelRef {
  let rest = body.replace(/^models\//, "");
  if (/^(datasets|spaces)\//.test(rest)) throw refError(ref, "only model repos hold models");
  // `…/file.gguf@rev`: the revision follows the file
  let revision: string | undefined;
  const fileRev = /^(.*\.gguf)@([^@]+)$/i.exec(rest);
  if (fileRev) {
    rest = fileRev[1] as string;
    revision = fileRev[2] as string;
  }
  const [owner = "", nameRev = "", ...pathParts] = rest.split("/");
  let name = nameRev;
  const at = nameRev.indexOf("@");
  if (at >= 0) {
    if (revision !== undefined) throw refError(ref, "it gives the revision twice");
    name = nameRev.slice(0, at);
    revision = safeDecode(ref, nameRev.slice(at + 1));
  }
  const path = pathParts.length > 0 ? pathParts.map((p) => safeDecode(ref, p)).join("/") : undefined;
  return hfRef(ref, `${owner}/${name}`, revision ?? "main", path);
}

/** `https://huggingface.co/owner/repo[/resolve|blob/<rev>/<path>|/tree/<rev>]`. */
function parseHttpUrl(ref: string, text: string, endpoint: string | undefined): HfModelRef {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw refError(ref, "it is not a valid URL");
  }
  const hosts = new Set(["huggingface.co", "www.huggingface.co", "hf.co"]);
  let base = "";
  if (endpoint) {
    try {
      const e = new URL(endpoint);
      hosts.add(e.host);
      if (e.host === url.host) base = e.pathname.replace(/\/+$/, "");
    } catch {
      // an invalid endpoint adds nothing
    }
  }
  if (!hosts.has(url.host)) {
    throw refError(ref, `only Hugging Face URLs can be fetched (${[...hosts].join(", ")}), not ${url.host}`);
  }
  const segments = url.pathname.slice(base.length).split("/").filter(Boolean);
  if (segments[0] === "datasets" || segments[0] === "spaces") throw refError(ref, "only model repos hold models");
  const [owner = "", name = "", action, rev, ...path] = segments;
  const repo = `${owner}/${name}`;
  if (action === undefined) return hfRef(ref, repo, "main", undefined);
  if (rev === undefined) throw refError(ref, `the URL ends after '${action}'`);
  const revision = safeDecode(ref, rev);
  if (action === "tree") return hfRef(ref, repo, revision, undefined);
  if (action !== "resolve" && action !== "blob") {
    throw refError(ref, `a file URL has /resolve/ or /blob/ after the repo, not /${action}/`);
  }
  if (path.length === 0) throw refError(ref, "the URL names no file");
  return hfRef(ref, repo, revision, path.map((p) => safeDecode(ref, p)).join("/"));
}

function safeDecode(ref: string, segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw refError(ref, `'${segment}' is not valid URL encoding`);
  }
}

/** The longest catalog id made from a reference before it is shortened with a hash. */
const MAX_ID = 96;

/**
 * The catalog id a reference's model is stored under, using only a-z, 0-9, '.', '_' and '-' and
 * never naming a path (so it cannot escape the models directory):
 *
 * - Hugging Face: `<owner>--<name>--<path, '/' as '--', without .gguf and without a split suffix>`,
 *   lower case, other characters as '-': `ggml-org/models:tinyllamas/stories260K.gguf` →
 *   `ggml-org--models--tinyllamas--stories260k`; every part of a split model → one id. A revision
 *   other than main adds `--rev-<revision>` (a commit: its first 12 hex digits). Repo names never
 *   contain "--" (Hugging Face forbids it), so the parts cannot run into each other.
 * - A repo without a file: pass the file pickGguf chose as `pickedPath` to get the same id as
 *   naming that file; without it, `<owner>--<name>` (and `--<quant>` when one was asked for).
 * - A local file: its file name's id (modelIdFromFileName). A catalog id: itself.
 *
 * Ids longer than 96 characters keep their first 83 and end with `-<12 hex digits of sha256>` of
 * the whole reference.
 */
export function catalogIdFor(ref: ModelRef, pickedPath?: string): string {
  if (ref.kind === "id") return ref.id;
  if (ref.kind === "local") return modelIdFromFileName(ref.path);
  const [owner = "", name = ""] = ref.repo.split("/");
  const file = ref.path ?? pickedPath;
  const parts = [owner, name];
  if (file !== undefined) {
    parts.push(
      ...file
        .replace(/\.gguf$/i, "")
        .replace(/-\d{5}-of-\d{5}$/i, "")
        .split("/"),
    );
  } else if (ref.quant !== undefined) {
    parts.push(ref.quant);
  }
  if (ref.revision !== "main")
    parts.push(`rev-${/^[0-9a-f]{40}$/i.test(ref.revision) ? ref.revision.slice(0, 12) : ref.revision}`);
  let id = parts
    .map(idPart)
    .filter((p) => p !== "")
    .join("--");
  if (id === "" || !/^[a-z0-9]/.test(id)) id = `hf-${id}`;
  if (id.length <= MAX_ID) return id;
  const canonical = `${ref.repo}@${ref.revision}:${file ?? ref.quant ?? ""}`;
  const hash = createHash("sha256").update(canonical).digest("hex").slice(0, 12);
  return `${id.slice(0, MAX_ID - 13).replace(/[._-]+$/, "")}-${hash}`;
}

/** One part of an id: lower case, runs of other characters as one '-', no '-', '.' or '_' at the ends. */
function idPart(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, "-")
    .replace(/-{2,}/g, "-")
    .replace(/^[._-]+|[._-]+$/g, "");
}

/**
 * The reference written out in its canonical form: `owner/repo@rev:path` (revision and file only
 * when set), the absolute path of a local file, or the catalog id.
 */
export function formatModelRef(ref: ModelRef): string {
  if (ref.kind === "id") return ref.id;
  if (ref.kind === "local") return ref.path;
  const rev = ref.revision === "main" ? "" : `@${ref.revision}`;
  const file = ref.path ?? ref.quant;
  return `${ref.repo}${rev}${file === undefined ? "" : `:${file}`}`;
}
