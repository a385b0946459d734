import { readFileSync, realpathSync, statSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import { hfHubCache } from "./hf-env.js";
import { repoIdProblem, repoPathProblem, revisionProblem } from "./repo-names.js";

/**
 * A file of a Hugging Face repo in the local Hugging Face cache (huggingface_hub's layout):
 * `<cache>/models--<owner>--<name>/refs/<revision>` holds the commit a branch or tag points to,
 * and `snapshots/<commit>/<path>` is the file (a symlink into `blobs/`, or the file itself where
 * symlinks are not available). The cache is `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
 * `~/.cache/huggingface/hub`. A revision of 40 hex digits is the commit itself.
 *
 * Answers the absolute snapshot path when it leads to a regular file (of `size` bytes, when a size
 * is given); undefined otherwise. The snapshot path is answered rather than the blob it links to so
 * that the file keeps its name: llama.cpp finds the other parts of a split model by name, beside
 * the first. Files found here are used in place, never copied. Invalid names are never looked up.
 */
export function findInHfCache(
  repo: string,
  revision: string,
  path: string,
  env: NodeJS.ProcessEnv = process.env,
  size?: number,
): string | undefined {
  if (repoIdProblem(repo) || revisionProblem(revision) || repoPathProblem(path)) return undefined;
  const repoDir = resolve(hfHubCache(env), `models--${repo.replace("/", "--")}`);
  let commit = revision;
  if (!/^[0-9a-f]{40}$/.test(revision)) {
    try {
      commit = readFileSync(join(repoDir, "refs", ...revision.split("/")), "utf8").trim();
    } catch {
      return undefined;
    }
    if (!/^[0-9a-f]{40}$/.test(commit)) return undefined;
  }
  const snapshot = join(repoDir, "snapshots", commit);
  const file = join(snapshot, ...path.split("/"));
  const rel = relative(snapshot, file);
  if (rel === "" || rel.startsWith(`..${sep}`) || rel === "..") return undefined;
  try {
    const real = realpathSync(file);
    const info = statSync(real);
    if (!info.isFile()) return undefined;
    if (size !== undefined && info.size !== size) return undefined;
  } catch {
    return undefined;
  }
  return file;
}
