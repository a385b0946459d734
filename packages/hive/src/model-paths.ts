import { realpath } from "node:fs/promises";
import { homedir } from "node:os";
import { isAbsolute, relative, resolve, sep } from "node:path";
import { RbeeError } from "@rbee/contract";

/**
 * Which files on this machine a request may name as a model (`"model": "/path/to/x.gguf"`): the
 * hive's owner decides, not whoever holds an API key.
 *
 * - Always: the hive's model cache, the Hugging Face cache, and the directories given with
 *   `--models-dir` / `RBEE_MODELS_DIRS` (any depth below them).
 * - By default also the hive user's home directory and the hive's working directory, but not below
 *   a hidden directory there (`~/.ssh`, `~/.config`, ...), and neither when it is `/` or a system
 *   directory.
 * - Never system directories (`/etc`, `/proc`, `/sys`, `/dev`, `/boot`, `/run`, `/var`, `/usr`,
 *   `/bin`, `/sbin`, `/lib*`), whatever the roots say; only files ending in `.gguf`; only absolute
 *   paths; and a symbolic link must lead to an allowed place too.
 *
 * Every refused path gets the same answer, before the file system is looked at: it tells nothing
 * about whether the file exists, is readable, or is a GGUF.
 */
export interface ModelPathRoots {
  /** Allowed at any depth: the model cache, the Hugging Face cache, --models-dir entries. */
  explicit: readonly string[];
  /** Allowed outside hidden directories: the user's home and the working directory. */
  defaults: readonly string[];
}

const SYSTEM_DIRS = [
  "/etc",
  "/proc",
  "/sys",
  "/dev",
  "/boot",
  "/run",
  "/var",
  "/usr",
  "/bin",
  "/sbin",
  "/lib",
  "/lib32",
  "/lib64",
  "/libx32",
  "/srv",
  "/snap",
];

function isSystemPath(path: string): boolean {
  return path === "/" || SYSTEM_DIRS.some((d) => path === d || path.startsWith(`${d}${sep}`));
}

/** `path` relative to `root` when it lies below it (or is it), else undefined. */
function below(root: string, path: string): string | undefined {
  const rel = relative(root, path);
  if (rel === "") return rel;
  if (rel.startsWith("..") || isAbsolute(rel)) return undefined;
  return rel;
}

export class ModelPathNotAllowedError extends RbeeError {
  constructor(path: string) {
    super(
      `model path '${path.slice(0, 300)}' is not one this hive takes models from: give the absolute path of a .gguf file in its model cache, the Hugging Face cache, a directory its owner allowed (rbee hive start --models-dir, RBEE_MODELS_DIRS), or its user's home or working directory outside hidden directories`,
      { statusCode: 403, code: "model_path_not_allowed", param: "model" },
    );
  }
}

/** The default roots besides the caches: the user's home and the working directory, unless either is a system place. */
export function defaultModelRoots(cwd = process.cwd(), home = homedir()): string[] {
  return [home, cwd].map((d) => resolve(d)).filter((d) => !isSystemPath(d));
}

export class ModelPathPolicy {
  readonly #explicit: string[];
  readonly #defaults: string[];

  constructor(roots: ModelPathRoots) {
    this.#explicit = roots.explicit.map((d) => resolve(d));
    this.#defaults = roots.defaults.map((d) => resolve(d));
  }

  /** True when a path (absolute) is allowed by its text alone. */
  allows(path: string): boolean {
    return /\.gguf$/i.test(path) && this.#inAllowedPlace(path);
  }

  #inAllowedPlace(path: string): boolean {
    if (!isAbsolute(path)) return false;
    const p = resolve(path);
    if (isSystemPath(p)) return false;
    if (this.#explicit.some((root) => below(root, p) !== undefined)) return true;
    return this.#defaults.some((root) => {
      const rel = below(root, p);
      return rel !== undefined && rel !== "" && !rel.split(sep).some((part) => part.startsWith("."));
    });
  }

  /**
   * Refuses a path this hive does not take models from, the same way for every such path; then
   * follows symbolic links and refuses one that leads elsewhere. A path that is allowed but names
   * no file passes (the catalog says there is no file there).
   * @throws ModelPathNotAllowedError (403).
   */
  async check(given: string, shownAs = given, anywhere = false): Promise<void> {
    // the cluster's administrator (see any_path in the hive API) may name a file anywhere but in system directories
    if (anywhere) {
      if (!/\.gguf$/i.test(given) || isSystemPath(resolve(given))) throw new ModelPathNotAllowedError(shownAs);
      try {
        if (isSystemPath(await realpath(given))) throw new ModelPathNotAllowedError(shownAs);
      } catch (err) {
        if (err instanceof ModelPathNotAllowedError) throw err;
      }
      return;
    }
    if (!this.allows(given)) throw new ModelPathNotAllowedError(shownAs);
    let real: string;
    try {
      real = await realpath(given);
    } catch {
      return;
    }
    // (a link may lead to a file without the extension: the Hugging Face cache's blobs)
    if (!this.#inAllowedPlace(real)) throw new ModelPathNotAllowedError(shownAs);
  }
}
