import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type DownloadProgress, downloadFile, downloadFiles } from "../src/index.js";
import {
  cdnRequests,
  checkProgress,
  type HubFixture,
  leftovers,
  MiB,
  README,
  served,
  startHubFixture,
} from "./hub-fixture.js";

let f: HubFixture;
beforeAll(async () => {
  f = await startHubFixture("file");
});
afterAll(async () => {
  await f?.close();
});
beforeEach(() => f.reset());

async function sha256Of(path: string): Promise<string> {
  return createHash("sha256")
    .update(await readFile(path))
    .digest("hex");
}

describe("downloadFile", () => {
  it("downloads a file through the Hub's redirect, verifies its sha256 and renames it into place", async () => {
    const events: DownloadProgress[] = [];
    const p = f.paths("stories260K.gguf");
    const r = await downloadFile({
      url: f.stories.url,
      ...p,
      size: f.stories.size,
      sha256: f.stories.sha256,
      onProgress: (e) => events.push(e),
    });
    expect(r).toMatchObject({
      path: p.destPath,
      size: f.stories.size,
      sha256: f.stories.sha256,
      fetchedBytes: f.stories.size,
      resumedFromBytes: 0,
    });
    expect(await sha256Of(p.destPath)).toBe(f.stories.sha256);
    expect(leftovers(p.partPath)).toEqual([]);
    checkProgress(events, f.stories.size);
    expect(served(f, "stories260K.gguf")).toBe(f.stories.size);
  });

  it("learns the size from the server when the caller does not know it, and reports the sha256 it computed", async () => {
    const p = f.paths("README.md");
    const r = await downloadFile({ url: f.readme.url, ...p });
    expect(r.size).toBe(README.length);
    expect(r.sha256).toBe(createHash("sha256").update(README).digest("hex"));
    expect(await readFile(p.destPath, "utf8")).toBe(README);
  });

  it("fetches a large file in parallel ranged parts, each written in place", async () => {
    const events: DownloadProgress[] = [];
    const p = f.paths("medium.gguf");
    const r = await downloadFile({
      url: f.medium.url,
      ...p,
      size: f.medium.size,
      sha256: f.medium.sha256,
      parts: 4,
      onProgress: (e) => events.push(e),
    });
    expect(r.sha256).toBe(f.medium.sha256);
    expect(await sha256Of(p.destPath)).toBe(f.medium.sha256);
    const ranges = cdnRequests(f).map((q) => q.range);
    const step = Math.ceil(f.medium.size / 4);
    expect(ranges).toEqual([0, 1, 2, 3].map((i) => `bytes=${i * step}-${Math.min(f.medium.size, (i + 1) * step) - 1}`));
    expect(cdnRequests(f).every((q) => q.status === 206)).toBe(true);
    expect(served(f, "medium.gguf")).toBe(f.medium.size);
    checkProgress(events, f.medium.size);
  });

  it("uses 4 parts by default from 64 MiB when the size is known", async () => {
    const p = f.paths("large.gguf");
    expect(f.large.size).toBeGreaterThan(64 * MiB);
    const r = await downloadFile({ url: f.large.url, ...p, size: f.large.size, sha256: f.large.sha256 });
    expect(r.sha256).toBe(f.large.sha256);
    expect(cdnRequests(f)).toHaveLength(4);
    expect(served(f, "large.gguf")).toBe(f.large.size);
  });

  it("falls back to one stream when the server ignores Range, using the 200 it sent", async () => {
    f.hub.faults.ignoreRange = true;
    const p = f.paths("medium.gguf");
    const r = await downloadFile({ url: f.medium.url, ...p, size: f.medium.size, sha256: f.medium.sha256, parts: 4 });
    expect(r.sha256).toBe(f.medium.sha256);
    expect(cdnRequests(f).map((q) => q.status)).toEqual([200]);
    expect(served(f, "medium.gguf")).toBe(f.medium.size);
  });

  it("sends the token to the Hub but not to the CDN it redirects to", async () => {
    const p = f.paths("stories260K.gguf");
    await downloadFile({
      url: f.stories.url,
      ...p,
      headers: { Authorization: "Bearer hf_secret" },
      sha256: f.stories.sha256,
    });
    const hubSide = f.hub.stats.requests.filter((q) => q.path.includes("/resolve/"));
    expect(hubSide.length).toBeGreaterThan(0);
    expect(hubSide.every((q) => q.authorized)).toBe(true);
    expect(cdnRequests(f).length).toBeGreaterThan(0);
    expect(cdnRequests(f).every((q) => !q.authorized)).toBe(true);
  });

  it("refuses a second download of the same part in the same process", async () => {
    f.hub.faults.bytesPerSecond = 2 * MiB;
    const p = f.paths("stories260K.gguf");
    const first = downloadFile({ url: f.stories.url, ...p, sha256: f.stories.sha256 });
    await expect(downloadFile({ url: f.stories.url, ...p })).rejects.toMatchObject({ code: "download_in_progress" });
    delete f.hub.faults.bytesPerSecond;
    await first;
  });
});

describe("downloadFiles", () => {
  it("downloads several files at once with one progress over all of them", async () => {
    const events: DownloadProgress[] = [];
    const a = f.paths("stories260K.gguf");
    const b = f.paths("medium.gguf");
    const c = f.paths("README.md");
    const results = await downloadFiles(
      [
        { url: f.stories.url, ...a, size: f.stories.size, sha256: f.stories.sha256 },
        { url: f.medium.url, ...b, size: f.medium.size, sha256: f.medium.sha256, parts: 2 },
        { url: f.readme.url, ...c, size: f.readme.size },
      ],
      { concurrency: 2, onProgress: (e) => events.push(e) },
    );
    expect(results.map((r) => r.path)).toEqual([a.destPath, b.destPath, c.destPath]);
    expect(results[1]!.sha256).toBe(f.medium.sha256);
    checkProgress(events, f.stories.size + f.medium.size + f.readme.size);
    expect(existsSync(c.destPath)).toBe(true);
  });

  it("stops the others when one fails, keeping their parts", async () => {
    const a = f.paths("medium.gguf");
    const b = f.paths("missing.gguf");
    f.hub.faults.bytesPerSecond = 8 * MiB;
    const err = await downloadFiles(
      [
        { url: f.medium.url, ...a, size: f.medium.size, parts: 2 },
        { url: `${f.hub.url}/rbee/models/resolve/main/missing.gguf`, ...b },
      ],
      { concurrency: 2 },
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ statusCode: 404, code: "not_found" });
    expect(existsSync(a.destPath)).toBe(false);
    expect(leftovers(a.partPath)).toEqual([a.partPath, `${a.partPath}.json`]);
  });
});
