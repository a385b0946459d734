import { ValidationError } from "@rbee/contract";

/**
 * Hugging Face's rules for a repo id (huggingface_hub's validate_repo_id): `owner/name`, each part
 * 1-96 characters of letters, digits, '_', '-' and '.', starting and ending with a letter, digit or
 * '_', and never containing "--" or "..".
 */
const REPO_PART = /^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?$/;

/** A revision: a branch, tag or commit ("main", "v1.0", "refs/pr/1", 40 hex digits). */
const REVISION = /^[A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*$/;

/** Why `repo` is not a valid repo id, or undefined when it is. */
export function repoIdProblem(repo: string): string | undefined {
  const parts = repo.split("/");
  if (parts.length !== 2) return `'${repo}' is not owner/name`;
  for (const part of parts) {
    if (!REPO_PART.test(part)) {
      return `'${part}' is not a valid repo owner or name (letters, digits, '_', '-', '.'; at most 96; starting and ending with a letter, digit or '_')`;
    }
    if (part.includes("--") || part.includes("..")) return `'${part}' contains "--" or ".."`;
  }
  return undefined;
}

/** Why `revision` is not a valid revision, or undefined when it is. */
export function revisionProblem(revision: string): string | undefined {
  if (revision.length === 0 || revision.length > 255) return "the revision is empty or too long";
  if (!REVISION.test(revision))
    return `the revision '${revision}' may only hold letters, digits, '.', '_', '-' and '/'`;
  if (revision.split("/").some((p) => p === "." || p === "..")) return `the revision '${revision}' contains '..'`;
  return undefined;
}

/**
 * Why `path` cannot name a file in a repo, or undefined when it can: a relative path with '/'
 * separators, no empty, '.' or '..' segment, no backslash, no control character.
 */
export function repoPathProblem(path: string): string | undefined {
  if (path.length === 0) return "the file path is empty";
  if (path.length > 1000) return "the file path is too long";
  if (/[\u0000-\u001f\u007f]/.test(path)) return "the file path contains control characters";
  if (path.includes("\\")) return `the file path '${path}' contains a backslash; use '/'`;
  if (path.startsWith("/")) return `the file path '${path}' is absolute; give it relative to the repo`;
  if (path.split("/").some((p) => p === "" || p === "." || p === "..")) {
    return `the file path '${path}' has an empty, '.' or '..' part`;
  }
  return undefined;
}

/** Refuses an invalid repo id with a 400 that says the rule. */
export function assertRepoId(repo: string, param = "model"): string {
  const problem = repoIdProblem(repo);
  if (problem) throw new ValidationError(`${problem}; a Hugging Face repo is owner/name`, param, { repo });
  return repo;
}

/** Refuses an invalid revision with a 400. */
export function assertRevision(revision: string, param = "model"): string {
  const problem = revisionProblem(revision);
  if (problem) throw new ValidationError(problem, param, { revision });
  return revision;
}

/** Refuses a path that could escape a repo (or a snapshot directory) with a 400. */
export function assertRepoPath(path: string, param = "model"): string {
  const problem = repoPathProblem(path);
  if (problem) throw new ValidationError(problem, param, { path });
  return path;
}
