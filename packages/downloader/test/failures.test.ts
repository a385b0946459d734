import { existsSync } from "node:fs";
import { dirname } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  ChecksumMismatchError,
  checkFreeSpace,
  DownloadError,
  downloadFile,
  freeBytes,
  InsufficientDiskError,
} from "../src/index.js";
import { cdnRequests, type HubFixture, leftovers, MiB, startHubFixture } from "./hub-fixture.js";

let f: HubFixture;
beforeAll(async () => {
  f = await startHubFixture("fail");
});
afterAll(async () => {
  await f?.close();
});
beforeEach(() => f.reset());

const fast = { baseDelayMs: 5, maxDelayMs: 50 };

async function failure(p: Promise<unknown>): Promise<Error> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(Error);
  return err as Error;
}

describe("downloadFile failures", () => {
  it("deletes the part and throws ChecksumMismatchError when the bytes do not match the advertised sha256", async () => {
    f.hub.faults.wrongSha256 = true;
    const tree = (await (await fetch(`${f.hub.url}/api/models/rbee/models/tree/main`)).json()) as Array<{
      path: string;
      lfs?: { oid: string };
    }>;
    const advertised = tree.find((e) => e.path === "stories260K.gguf")!.lfs!.oid;
    const p = f.paths("stories260K.gguf");
    const err = await failure(downloadFile({ url: f.stories.url, ...p, sha256: advertised }));
    expect(err).toBeInstanceOf(ChecksumMismatchError);
    expect(err).toMatchObject({
      statusCode: 502,
      code: "checksum_mismatch",
      expected: advertised,
      actual: f.stories.sha256,
    });
    expect(existsSync(p.destPath)).toBe(false);
    expect(leftovers(p.partPath)).toEqual([]);
    // a checksum failure is not retried
    expect(cdnRequests(f)).toHaveLength(1);
  });

  for (const [status, code] of [
    [401, "unauthorized"],
    [403, "forbidden"],
    [404, "not_found"],
  ] as const) {
    it(`fails at once on HTTP ${status} with a DownloadError (${code}) and no retries`, async () => {
      f.hub.faults.status = { code: status };
      const p = f.paths("stories260K.gguf");
      const err = await failure(downloadFile({ url: f.stories.url, ...p, retry: fast }));
      expect(err).toBeInstanceOf(DownloadError);
      expect(err).toMatchObject({ statusCode: status, code, httpStatus: status, url: f.stories.url, retryable: false });
      if (status === 401) expect(err.message).toMatch(/HF_TOKEN/);
      expect(f.hub.stats.requests).toHaveLength(1);
      expect(existsSync(p.destPath)).toBe(false);
    });
  }

  it("asks for one range only until the server answered it, so a refusal costs one request with parts too", async () => {
    f.hub.faults.status = { code: 403 };
    const p = f.paths("medium.gguf");
    const err = await failure(downloadFile({ url: f.medium.url, ...p, size: f.medium.size, parts: 4, retry: fast }));
    expect(err).toMatchObject({ statusCode: 403 });
    expect(f.hub.stats.requests).toHaveLength(1);
  });

  it("names the Hub's error code: a missing file is EntryNotFound", async () => {
    const p = f.paths("nope.gguf");
    const err = await failure(downloadFile({ url: `${f.hub.url}/rbee/models/resolve/main/nope.gguf`, ...p }));
    expect(err).toMatchObject({ statusCode: 404, hubErrorCode: "EntryNotFound" });
    expect(err.message).toContain("EntryNotFound");
  });

  it("waits as long as Retry-After says on 429, then succeeds", async () => {
    f.hub.faults.status = { code: 429, times: 1, retryAfter: 1 };
    const p = f.paths("stories260K.gguf");
    const t0 = performance.now();
    const r = await downloadFile({ url: f.stories.url, ...p, sha256: f.stories.sha256, retry: fast });
    expect(r.sha256).toBe(f.stories.sha256);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(950);
    expect(f.hub.stats.requests[0]!.status).toBe(429);
  });

  it("retries 500 and resumes: twice 500, then the file", async () => {
    f.hub.faults.status = { code: 500, times: 2 };
    const p = f.paths("stories260K.gguf");
    const r = await downloadFile({ url: f.stories.url, ...p, sha256: f.stories.sha256, retry: fast });
    expect(r.sha256).toBe(f.stories.sha256);
    expect(f.hub.stats.requests.map((q) => q.status).slice(0, 3)).toEqual([500, 500, 302]);
  });

  it("gives up after the configured tries in a row without progress, keeping what it has", async () => {
    f.hub.faults.status = { code: 503 };
    const p = f.paths("stories260K.gguf");
    const err = await failure(downloadFile({ url: f.stories.url, ...p, retry: { ...fast, attempts: 3 } }));
    expect(err).toBeInstanceOf(DownloadError);
    expect(err).toMatchObject({ statusCode: 502, code: "download_failed", httpStatus: 503, retryable: true });
    expect(f.hub.stats.requests).toHaveLength(3);
  });

  it("drops a stalled connection and tries again", async () => {
    // 1 kB/s: a 1 kB chunk a second, longer than the stall timeout
    f.hub.faults.bytesPerSecond = 1000;
    const p = f.paths("stories260K.gguf");
    let stalls = 0;
    const done = downloadFile({
      url: f.stories.url,
      ...p,
      sha256: f.stories.sha256,
      stallTimeoutMs: 300,
      retry: fast,
    });
    const watch = setInterval(() => {
      // once the first attempt was dropped, lift the throttle
      stalls = cdnRequests(f).length;
      if (stalls >= 2) delete f.hub.faults.bytesPerSecond;
    }, 20);
    try {
      const r = await done;
      expect(r.sha256).toBe(f.stories.sha256);
    } finally {
      clearInterval(watch);
    }
    expect(stalls).toBeGreaterThanOrEqual(2);
  });

  it("refuses to start when the disk cannot hold the file, before fetching anything", async () => {
    const p = f.paths("huge.gguf");
    const huge = 2 ** 50;
    const err = await failure(downloadFile({ url: f.stories.url, ...p, size: huge }));
    expect(err).toBeInstanceOf(InsufficientDiskError);
    expect(err).toMatchObject({ statusCode: 507, code: "insufficient_disk", needBytes: huge });
    expect(err.message).toContain(dirname(p.partPath));
    expect(err.message).toMatch(/free/);
    expect(f.hub.stats.requests).toHaveLength(0);
    expect(leftovers(p.partPath)).toEqual([]);
  });

  it("checkFreeSpace measures the nearest existing directory", async () => {
    const free = await freeBytes(`${f.dir}/not/yet/there`);
    expect(free).toBeGreaterThan(MiB);
    await checkFreeSpace(`${f.dir}/not/yet/there`, MiB);
    await expect(checkFreeSpace(f.dir, free * 2)).rejects.toBeInstanceOf(InsufficientDiskError);
  });

  it("rejects a malformed request before any request", async () => {
    const p = f.paths("x");
    await expect(downloadFile({ url: "ftp://example.com/x", ...p })).rejects.toMatchObject({
      statusCode: 400,
      param: "url",
    });
    await expect(downloadFile({ url: f.stories.url, ...p, sha256: "abc" })).rejects.toMatchObject({ param: "sha256" });
    await expect(downloadFile({ url: f.stories.url, ...p, parts: 0 })).rejects.toMatchObject({ param: "parts" });
    expect(f.hub.stats.requests).toHaveLength(0);
  });
});
