import { createHash } from "node:crypto";
import { type HubFileEntry, wrongSha256 } from "./hub-files.js";

/** A repository as the test hub holds it. */
export interface RepoState {
  id: string;
  revision: string;
  gated: boolean;
  files: Map<string, HubFileEntry>;
  createdAt: Date;
  lastModified: Date;
}

/** The sha256 the hub shows for a file (a wrong one under the wrongSha256 fault). */
export function advertisedSha256(file: HubFileEntry, wrong: boolean): string {
  return wrong ? wrongSha256(file.sha256) : file.sha256;
}

/**
 * `GET /api/models/{id}` (and `/revision/{rev}`): the Hub's ModelInfo. `blobs=true` adds each
 * sibling's size, blob id and LFS info, as `HfApi.model_info(files_metadata=True)` asks.
 */
export function modelInfoJson(repo: RepoState, o: { blobs: boolean; wrongSha: boolean }) {
  const [author] = repo.id.split("/");
  const files = [...repo.files.values()].sort((a, b) => byPath(a.path, b.path));
  const hasGguf = files.some((f) => f.path.toLowerCase().endsWith(".gguf"));
  return {
    _id: createHash("sha1").update(repo.id).digest("hex").slice(0, 24),
    id: repo.id,
    modelId: repo.id,
    author,
    sha: repo.revision,
    lastModified: repo.lastModified.toISOString(),
    createdAt: repo.createdAt.toISOString(),
    private: false,
    // the Hub says false, "auto" or "manual"
    gated: repo.gated ? "manual" : false,
    disabled: false,
    downloads: 0,
    likes: 0,
    tags: hasGguf ? ["gguf"] : [],
    ...(hasGguf ? { library_name: "gguf" } : {}),
    usedStorage: files.reduce((n, f) => n + f.size, 0),
    siblings: files.map((f) =>
      o.blobs
        ? {
            rfilename: f.path,
            size: f.size,
            blobId: f.gitOid,
            ...(f.lfs
              ? { lfs: { sha256: advertisedSha256(f, o.wrongSha), size: f.size, pointerSize: f.lfs.pointerSize } }
              : {}),
          }
        : { rfilename: f.path },
    ),
  };
}

/** A file or folder of `GET /api/models/{id}/tree/{rev}[/{dir}]`. */
export type TreeEntry =
  | {
      type: "file";
      oid: string;
      size: number;
      path: string;
      lfs?: { oid: string; size: number; pointerSize: number };
    }
  | { type: "directory"; oid: string; size: 0; path: string };

/**
 * The entries under `dir` ("" for the root): its files and folders, or everything below it with
 * `recursive`. Undefined when `dir` is not a folder of the repo.
 */
export function treeJson(
  repo: RepoState,
  dir: string,
  o: { recursive: boolean; wrongSha: boolean },
): TreeEntry[] | undefined {
  const prefix = dir === "" ? "" : `${dir}/`;
  const files = [...repo.files.values()].filter((f) => f.path.startsWith(prefix));
  if (files.length === 0) return undefined;
  const entries = new Map<string, TreeEntry>();
  for (const f of files) {
    const rest = f.path.slice(prefix.length);
    const parts = rest.split("/");
    // the folders between `dir` and the file
    const depth = o.recursive ? parts.length - 1 : Math.min(1, parts.length - 1);
    for (let i = 1; i <= depth; i++) {
      const path = prefix + parts.slice(0, i).join("/");
      if (!entries.has(path)) entries.set(path, { type: "directory", oid: treeOid(repo, path), size: 0, path });
    }
    if (parts.length === 1 || o.recursive) {
      entries.set(f.path, {
        type: "file",
        oid: f.gitOid,
        size: f.size,
        path: f.path,
        ...(f.lfs
          ? { lfs: { oid: advertisedSha256(f, o.wrongSha), size: f.size, pointerSize: f.lfs.pointerSize } }
          : {}),
      });
    }
  }
  return [...entries.values()].sort((a, b) => byPath(a.path, b.path));
}

/** A stable stand-in for a folder's git tree id. */
function treeOid(repo: RepoState, path: string): string {
  return createHash("sha1").update(`tree ${repo.revision} ${path}`).digest("hex");
}

/** Byte order of paths, as git orders a tree (and independent of the locale). */
function byPath(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
