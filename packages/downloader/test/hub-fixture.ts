import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  cachedGeneratedModel,
  type HubServer,
  requireStoriesModel,
  STORIES_SHA256,
  startHubServer,
} from "@rbee/testing";
import type { DownloadProgress } from "../src/index.js";

export const MiB = 1024 * 1024;
export const REPO = "rbee/models";
export const README = "# test models\n";

/** A test hub with stories260K, a README and generated GGUFs of about 24 and 72 MiB, in a temp dir. */
export interface HubFixture {
  hub: HubServer;
  dir: string;
  stories: { url: string; size: number; sha256: string };
  readme: { url: string; size: number };
  /** ~24 MiB: fetched in 4 parts when asked. */
  medium: { url: string; size: number; sha256: string; path: string };
  /** ~72 MiB: over the 64 MiB at which parts are the default. */
  large: { url: string; size: number; sha256: string; path: string };
  /** Fresh dest/part paths under the temp dir. */
  paths(name: string): { destPath: string; partPath: string };
  /** Resets faults and stats. */
  reset(): void;
  close(): Promise<void>;
}

export async function startHubFixture(label: string): Promise<HubFixture> {
  const dir = await mkdtemp(join(tmpdir(), `rbee-dl-${label}-`));
  const medium = await cachedGeneratedModel(24 * MiB, { dir: join(dir, "gen"), seed: 1 });
  const large = await cachedGeneratedModel(72 * MiB, { dir: join(dir, "gen"), seed: 2 });
  const hub = await startHubServer({
    repos: {
      [REPO]: {
        files: {
          "stories260K.gguf": { path: requireStoriesModel() },
          "README.md": { content: README },
          "medium.gguf": { path: medium.path },
          "large.gguf": { path: large.path },
        },
      },
    },
  });
  const url = (file: string) => `${hub.url}/${REPO}/resolve/main/${file}`;
  let n = 0;
  return {
    hub,
    dir,
    stories: { url: url("stories260K.gguf"), size: 1185376, sha256: STORIES_SHA256 },
    readme: { url: url("README.md"), size: README.length },
    medium: {
      url: url("medium.gguf"),
      size: medium.layout.fileBytes,
      sha256: hub.sha256(REPO, "medium.gguf"),
      path: medium.path,
    },
    large: {
      url: url("large.gguf"),
      size: large.layout.fileBytes,
      sha256: hub.sha256(REPO, "large.gguf"),
      path: large.path,
    },
    paths(name: string) {
      n++;
      return { destPath: join(dir, `models-${n}`, name), partPath: join(dir, "tmp", `${n}-${name}.part`) };
    },
    reset() {
      for (const k of Object.keys(hub.faults)) delete hub.faults[k as keyof typeof hub.faults];
      hub.stats.reset();
    },
    async close() {
      await hub.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Bytes the hub sent of `file` (a path in the test repo). */
export function served(f: HubFixture, file: string): number {
  return f.hub.stats.bytesServed(`${REPO}/${file}`);
}

/** Requests that reached the CDN (file bodies), with their ranges. */
export function cdnRequests(f: HubFixture) {
  return f.hub.stats.requests.filter((r) => r.path.startsWith("/cdn/"));
}

/** Whether a download left a part or sidecar behind. */
export function leftovers(partPath: string): string[] {
  return [partPath, `${partPath}.json`].filter((p) => existsSync(p));
}

export async function filesIn(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [] as string[])).sort();
}

/** Progress events must only grow and end at the file's size. */
export function checkProgress(events: DownloadProgress[], size: number): void {
  if (events.length === 0) throw new Error("no progress events");
  for (let i = 1; i < events.length; i++) {
    const a = events[i - 1]!;
    const b = events[i]!;
    if (b.done < a.done || b.fetched < a.fetched)
      throw new Error(`progress went back: ${JSON.stringify(a)} then ${JSON.stringify(b)}`);
  }
  const last = events.at(-1)!;
  if (last.done !== size || last.total !== size) throw new Error(`last progress ${JSON.stringify(last)}, size ${size}`);
}
