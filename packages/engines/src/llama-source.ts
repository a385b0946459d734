import { existsSync } from "node:fs";
import { open, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

/** The llama.cpp source that the installed node-llama-cpp ships, as a git bundle. */
export interface LlamaCppSource {
  /** `node_modules/node-llama-cpp/llama/gitRelease.bundle` */
  bundle: string;
  /** The full commit the bundle's HEAD points at. */
  commit: string;
  /** Its first 7 hex digits, as build ids use them. */
  commit7: string;
  /** From `llama/llama.cpp.info.json`. */
  tag?: string;
  repo?: string;
  /** The node-llama-cpp version that ships it. */
  nodeLlamaCppVersion: string;
}

/** The bundle (or node-llama-cpp) cannot be found or read. */
export class LlamaCppSourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LlamaCppSourceError";
  }
}

/**
 * The refs a git bundle's header lists ("# v2 git bundle", optional "@capability" lines in v3,
 * "-<sha> ..." prerequisites, then "<sha> <ref>" lines up to a blank line). Read without git, so that
 * a cached build is found on a machine where git is not installed.
 */
export function parseBundleHeads(header: string): Array<{ commit: string; ref: string }> {
  const lines = header.split("\n");
  if (!/^# v[23] git bundle$/.test(lines[0] ?? "")) throw new LlamaCppSourceError("not a git bundle");
  const heads: Array<{ commit: string; ref: string }> = [];
  for (const line of lines.slice(1)) {
    if (line === "") break;
    const m = /^([0-9a-f]{40}|[0-9a-f]{64}) (\S+)$/.exec(line);
    if (m) heads.push({ commit: m[1]!, ref: m[2]! });
  }
  return heads;
}

/** Finds node-llama-cpp's llama.cpp bundle and reads which commit it holds. */
export async function llamaCppSource(): Promise<LlamaCppSource> {
  let pkgJson: string | undefined;
  try {
    // its exports do not include package.json: resolve its entry point and walk up to the package
    let dir = dirname(createRequire(import.meta.url).resolve("node-llama-cpp"));
    while (pkgJson === undefined && dirname(dir) !== dir) {
      const candidate = join(dir, "package.json");
      if (existsSync(candidate) && existsSync(join(dir, "llama"))) pkgJson = candidate;
      else dir = dirname(dir);
    }
  } catch {
    // not installed
  }
  if (pkgJson === undefined) {
    throw new LlamaCppSourceError(
      "llama.cpp's source was not found: node-llama-cpp (which ships it as llama/gitRelease.bundle) is not installed; run `npm install` in the rbee checkout",
    );
  }
  const root = dirname(pkgJson);
  const bundle = join(root, "llama", "gitRelease.bundle");
  const version = (JSON.parse(await readFile(pkgJson, "utf8")) as { version?: string }).version ?? "unknown";
  let header: string;
  try {
    const fh = await open(bundle, "r");
    try {
      const buf = Buffer.alloc(64 * 1024);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      header = buf.subarray(0, bytesRead).toString("latin1");
    } finally {
      await fh.close();
    }
  } catch (err) {
    throw new LlamaCppSourceError(
      `llama.cpp's source bundle could not be read: ${bundle} (${(err as Error).message}); reinstall node-llama-cpp (npm install)`,
    );
  }
  let heads: Array<{ commit: string; ref: string }>;
  try {
    heads = parseBundleHeads(header);
  } catch {
    throw new LlamaCppSourceError(`${bundle} is not a git bundle; reinstall node-llama-cpp (npm install)`);
  }
  const head = heads.find((h) => h.ref === "HEAD") ?? heads[0];
  if (!head) throw new LlamaCppSourceError(`${bundle} lists no commit`);
  let info: { tag?: string; llamaCppGithubRepo?: string } = {};
  try {
    info = JSON.parse(await readFile(join(root, "llama", "llama.cpp.info.json"), "utf8")) as typeof info;
  } catch {
    // the tag is informative only
  }
  return {
    bundle,
    commit: head.commit,
    commit7: head.commit.slice(0, 7),
    tag: info.tag,
    repo: info.llamaCppGithubRepo,
    nodeLlamaCppVersion: version,
  };
}
