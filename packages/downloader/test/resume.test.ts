import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { copyFile, mkdir, readFile, stat, truncate, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { ChildHandle, REPO_ROOT } from "@rbee/testing";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { downloadFile } from "../src/index.js";
import type { PartState } from "../src/part-state.js";
import { cdnRequests, type HubFixture, leftovers, MiB, REPO, served, startHubFixture } from "./hub-fixture.js";

let f: HubFixture;
beforeAll(async () => {
  f = await startHubFixture("resume");
});
afterAll(async () => {
  await f?.close();
});
beforeEach(() => f.reset());

const fast = { baseDelayMs: 5, maxDelayMs: 50 };

async function sidecar(partPath: string): Promise<PartState> {
  return JSON.parse(await readFile(`${partPath}.json`, "utf8")) as PartState;
}

/** Starts a download and aborts it once `bytes` are on disk; resolves with the abort error. */
async function abortAfter(req: Parameters<typeof downloadFile>[0], bytes: number): Promise<unknown> {
  const ac = new AbortController();
  const reason = new Error("stopped by the test");
  const err = await downloadFile({
    ...req,
    signal: ac.signal,
    onProgress: (p) => {
      if (p.done >= bytes) ac.abort(reason);
    },
  }).catch((e: unknown) => e);
  expect(err).toBe(reason);
  return err;
}

describe("resuming", () => {
  it("resumes after dropped connections with Range, so the server sends each byte about once", async () => {
    f.hub.faults.dropAfterBytes = 5 * MiB;
    const p = f.paths("medium.gguf");
    const r = await downloadFile({
      url: f.medium.url,
      ...p,
      size: f.medium.size,
      sha256: f.medium.sha256,
      retry: fast,
    });
    expect(r.sha256).toBe(f.medium.sha256);
    const cdn = cdnRequests(f);
    expect(cdn.length).toBe(Math.ceil(f.medium.size / (5 * MiB)));
    expect(cdn[1]!.range).toBe(`bytes=${5 * MiB}-`);
    // every byte sent once: nothing is fetched again after a drop
    expect(served(f, "medium.gguf")).toBe(f.medium.size);
    expect(r.fetchedBytes).toBe(f.medium.size);
  });

  it("resumes parts after drops too", async () => {
    f.hub.faults.dropAfterBytes = 2 * MiB;
    const p = f.paths("medium.gguf");
    const r = await downloadFile({
      url: f.medium.url,
      ...p,
      size: f.medium.size,
      sha256: f.medium.sha256,
      parts: 4,
      retry: fast,
    });
    expect(r.sha256).toBe(f.medium.sha256);
    expect(served(f, "medium.gguf")).toBe(f.medium.size);
  });

  it("keeps the part and its sidecar on abort, and a new call resumes from them", async () => {
    f.hub.faults.bytesPerSecond = 20 * MiB;
    const p = f.paths("medium.gguf");
    const req = { url: f.medium.url, ...p, size: f.medium.size, sha256: f.medium.sha256 };
    await abortAfter(req, 8 * MiB);
    expect(existsSync(p.destPath)).toBe(false);
    expect(leftovers(p.partPath)).toEqual([p.partPath, `${p.partPath}.json`]);
    const kept = (await stat(p.partPath)).size;
    expect(kept).toBeGreaterThanOrEqual(8 * MiB);
    expect((await sidecar(p.partPath)).mode).toBe("single");

    delete f.hub.faults.bytesPerSecond;
    f.hub.stats.reset();
    const r = await downloadFile(req);
    expect(r.resumedFromBytes).toBe(kept);
    expect(r.fetchedBytes).toBe(f.medium.size - kept);
    expect(cdnRequests(f)[0]!.range).toBe(`bytes=${kept}-`);
    expect(r.sha256).toBe(f.medium.sha256);
    expect(leftovers(p.partPath)).toEqual([]);
  });

  it("resumes an aborted multi-part download range by range, fetching only what is missing", async () => {
    f.hub.faults.bytesPerSecond = 20 * MiB;
    const p = f.paths("medium.gguf");
    const req = { url: f.medium.url, ...p, size: f.medium.size, sha256: f.medium.sha256, parts: 4 };
    await abortAfter(req, 10 * MiB);
    const saved = await sidecar(p.partPath);
    expect(saved.mode).toBe("parts");
    expect(saved.ranges).toHaveLength(4);
    const onDisk = saved.ranges.reduce((n, r) => n + r.done, 0);
    expect(onDisk).toBeGreaterThanOrEqual(10 * MiB);
    expect((await stat(p.partPath)).size).toBe(f.medium.size);

    delete f.hub.faults.bytesPerSecond;
    f.hub.stats.reset();
    const r = await downloadFile(req);
    expect(r.resumedFromBytes).toBe(onDisk);
    expect(r.fetchedBytes).toBe(f.medium.size - onDisk);
    expect(served(f, "medium.gguf")).toBe(f.medium.size - onDisk);
    expect(r.sha256).toBe(f.medium.sha256);
  });

  it("survives a SIGKILL mid-download: the next call re-fetches at most the unsaved tails", async () => {
    f.hub.faults.bytesPerSecond = 8 * MiB;
    const p = f.paths("medium.gguf");
    const req = { url: f.medium.url, ...p, size: f.medium.size, sha256: f.medium.sha256, parts: 4 };
    const script = `
      const { downloadFile } = await import("@rbee/downloader");
      const req = JSON.parse(process.argv[1]);
      let said = 0;
      await downloadFile({ ...req, onProgress: (p) => { if (p.done - said >= 1048576) { said = p.done; console.log("done " + p.done); } } });
      console.log("finished");`;
    const child = new ChildHandle(process.execPath, ["--input-type=module", "-e", script, JSON.stringify(req)], {
      cwd: REPO_ROOT,
    });
    try {
      await child.waitForLine(/done (\d{8,})/, 30_000);
      // wait until about 40 % is on disk, then kill without warning
      for (;;) {
        const m = [...child.stdout.matchAll(/done (\d+)/g)].at(-1);
        if (m && Number(m[1]) >= 0.4 * f.medium.size) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      child.kill("SIGKILL");
      await child.waitForExit();
    } finally {
      child.kill("SIGKILL");
    }
    expect(child.stdout).not.toContain("finished");
    const sentBeforeKill = served(f, "medium.gguf");
    const saved = await sidecar(p.partPath);
    const recorded = saved.ranges.reduce((n, r) => n + r.done, 0);
    expect(recorded).toBeGreaterThan(0.3 * f.medium.size);

    delete f.hub.faults.bytesPerSecond;
    f.hub.stats.reset();
    const r = await downloadFile(req);
    expect(r.sha256).toBe(f.medium.sha256);
    expect(r.resumedFromBytes).toBe(recorded);
    const partBytes = Math.ceil(f.medium.size / 4);
    const refetched = sentBeforeKill + r.fetchedBytes - f.medium.size;
    // bytes sent twice: the tails written after the last sidecar save (and what was in flight)
    expect(refetched).toBeLessThanOrEqual(partBytes);
  }, 60_000);

  it("starts over when the file changed on the server (its ETag)", async () => {
    f.hub.faults.bytesPerSecond = 20 * MiB;
    const p = f.paths("changing.gguf");
    await f.hub.setFile(REPO, "changing.gguf", { path: f.medium.path });
    const url = `${f.hub.url}/${REPO}/resolve/main/changing.gguf`;
    await abortAfter({ url, ...p }, 4 * MiB);
    expect((await sidecar(p.partPath)).etag).toBe(f.medium.sha256);

    await f.hub.setFile(REPO, "changing.gguf", { path: f.large.path });
    delete f.hub.faults.bytesPerSecond;
    f.hub.stats.reset();
    const r = await downloadFile({ url, ...p });
    expect(r.sha256).toBe(f.large.sha256);
    expect(r.size).toBe(f.large.size);
    expect(r.resumedFromBytes).toBe(0);
  });

  it("starts over when the caller's ETag differs from the one the part was written under", async () => {
    f.hub.faults.bytesPerSecond = 20 * MiB;
    const p = f.paths("medium.gguf");
    await abortAfter({ url: f.medium.url, ...p, etag: f.medium.sha256 }, 4 * MiB);
    delete f.hub.faults.bytesPerSecond;
    f.hub.stats.reset();
    // a caller that looked the file up again and found another version
    const r = await downloadFile({ url: f.medium.url, ...p, etag: "0".repeat(64) });
    expect(r.resumedFromBytes).toBe(0);
    expect(r.fetchedBytes).toBe(f.medium.size);
    expect(r.sha256).toBe(f.medium.sha256);
  });

  it("starts over when the server ignores Range on a resume, and still gets the file right", async () => {
    f.hub.faults.bytesPerSecond = 20 * MiB;
    const p = f.paths("medium.gguf");
    const req = { url: f.medium.url, ...p, size: f.medium.size, sha256: f.medium.sha256 };
    await abortAfter(req, 4 * MiB);
    const kept = (await stat(p.partPath)).size;
    f.reset();
    f.hub.faults.ignoreRange = true;
    const r = await downloadFile(req);
    expect(cdnRequests(f).map((q) => [q.range, q.status])).toEqual([[`bytes=${kept}-`, 200]]);
    expect(r.resumedFromBytes).toBe(0);
    expect(r.fetchedBytes).toBe(f.medium.size);
    expect(r.sha256).toBe(f.medium.sha256);
  });

  it("starts over from a part without a sidecar, or with one for another file", async () => {
    const p = f.paths("stories260K.gguf");
    await mkdir(dirname(p.partPath), { recursive: true });
    await writeFile(p.partPath, Buffer.alloc(1000, 9));
    let r = await downloadFile({ url: f.stories.url, ...p, sha256: f.stories.sha256 });
    expect(r.resumedFromBytes).toBe(0);

    const q = f.paths("stories260K.gguf");
    f.hub.faults.bytesPerSecond = 4 * MiB;
    await abortAfter({ url: f.stories.url, ...q, size: f.stories.size }, 256 * 1024);
    delete f.hub.faults.bytesPerSecond;
    // the same part path asked for with another size: not the same file
    r = await downloadFile({ url: f.readme.url, ...q, size: f.readme.size });
    expect(r.resumedFromBytes).toBe(0);
    expect(r.size).toBe(f.readme.size);
  });

  it("finishes a part that is already complete without fetching it again (416 from the server)", async () => {
    const p = f.paths("README.md");
    await downloadFile({ url: f.readme.url, ...p });
    // put the bytes back as a complete part whose sidecar never learnt the size
    await mkdir(dirname(p.partPath), { recursive: true });
    await copyFile(p.destPath, p.partPath);
    const state: PartState = {
      version: 1,
      url: f.readme.url,
      size: null,
      sha256: null,
      etag: null,
      mode: "single",
      ranges: [{ start: 0, end: null, done: 0 }],
      updatedAt: "",
    };
    await writeFile(`${p.partPath}.json`, JSON.stringify(state));
    f.hub.stats.reset();
    const r = await downloadFile({ url: f.readme.url, ...p });
    expect(r.resumedFromBytes).toBe(f.readme.size);
    expect(r.fetchedBytes).toBe(0);
    expect(f.hub.stats.requests.at(-1)!.status).toBe(416);
    expect(r.sha256).toBe(
      createHash("sha256")
        .update(await readFile(p.destPath))
        .digest("hex"),
    );
  });

  it("treats a part longer than its sidecar allows as damaged", async () => {
    f.hub.faults.bytesPerSecond = 8 * MiB;
    const p = f.paths("stories260K.gguf");
    await abortAfter({ url: f.stories.url, ...p, size: f.stories.size }, 256 * 1024);
    delete f.hub.faults.bytesPerSecond;
    await truncate(p.partPath, f.stories.size + 10);
    const r = await downloadFile({ url: f.stories.url, ...p, size: f.stories.size, sha256: f.stories.sha256 });
    expect(r.resumedFromBytes).toBe(0);
  });
});
