import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import type { HubFile } from "./hub-types.js";

/** What the hub knows about one file of a repo, computed once when it is added. */
export interface HubFileEntry {
  /** The path in the repo. */
  path: string;
  size: number;
  /** sha256 of the bytes (lowercase hex): the LFS oid and the CDN ETag. */
  sha256: string;
  /** The git blob id: of the bytes for a regular file, of the LFS pointer file for an LFS file. */
  gitOid: string;
  /** Set for files stored in LFS: the size of their pointer file. */
  lfs: { pointerSize: number } | null;
  source: { path: string } | { content: Buffer };
  lastModified: Date;
}

/** Extensions the Hub's default .gitattributes puts in LFS whatever their size. */
const LFS_EXTENSIONS = [".gguf", ".safetensors", ".bin", ".pt", ".pth", ".onnx", ".h5", ".msgpack", ".ckpt", ".zip"];

/** The git object id of a blob: sha1 over "blob <size>\0" and the bytes. */
export function gitBlobOid(content: Buffer): string {
  return createHash("sha1").update(`blob ${content.length}\0`).update(content).digest("hex");
}

/** The pointer file git-lfs commits in place of a large file. */
export function lfsPointer(sha256: string, size: number): Buffer {
  return Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256}\nsize ${size}\n`);
}

async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Hashes a file (streaming it: generated GGUFs can be gigabytes) and decides whether it lives in LFS. */
export async function prepareHubFile(repoPath: string, file: HubFile, lfsThreshold: number): Promise<HubFileEntry> {
  const lower = repoPath.toLowerCase();
  const byExtension = LFS_EXTENSIONS.some((ext) => lower.endsWith(ext));
  if ("content" in file) {
    const content = typeof file.content === "string" ? Buffer.from(file.content) : file.content;
    const sha256 = createHash("sha256").update(content).digest("hex");
    const isLfs = byExtension || content.length > lfsThreshold;
    return {
      path: repoPath,
      size: content.length,
      sha256,
      gitOid: gitBlobOid(isLfs ? lfsPointer(sha256, content.length) : content),
      lfs: isLfs ? { pointerSize: lfsPointer(sha256, content.length).length } : null,
      source: { content },
      lastModified: new Date(),
    };
  }
  const info = await stat(file.path);
  if (!info.isFile()) throw new Error(`hub file ${repoPath}: ${file.path} is not a file`);
  const isLfs = byExtension || info.size > lfsThreshold;
  if (isLfs) {
    const sha256 = await sha256OfFile(file.path);
    const pointer = lfsPointer(sha256, info.size);
    return {
      path: repoPath,
      size: info.size,
      sha256,
      gitOid: gitBlobOid(pointer),
      lfs: { pointerSize: pointer.length },
      source: { path: file.path },
      lastModified: info.mtime,
    };
  }
  const content = await readFile(file.path);
  return {
    path: repoPath,
    size: content.length,
    sha256: createHash("sha256").update(content).digest("hex"),
    gitOid: gitBlobOid(content),
    lfs: null,
    source: { path: file.path },
    lastModified: info.mtime,
  };
}

/** The sha256 the hub advertises under the wrongSha256 fault: another valid-looking digest. */
export function wrongSha256(sha256: string): string {
  return createHash("sha256").update(`not ${sha256}`).digest("hex");
}

/** A repo's default commit: a fixed 40-hex id derived from its name. */
export function defaultRevision(repoId: string): string {
  return createHash("sha1").update(`rbee test hub ${repoId}`).digest("hex");
}

/** The commit after changing `path` to bytes with `sha256`. */
export function nextRevision(previous: string, path: string, sha256: string): string {
  return createHash("sha1").update(`${previous}\n${path}\n${sha256}`).digest("hex");
}
