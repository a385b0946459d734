import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startHubServer } from "../src/hub-server/hub-server.js";
import type { HubServer } from "../src/hub-server/hub-types.js";
import { gitBlobOid, lfsPointer, parseRange } from "../src/hub-server/index.js";
import { requireStoriesModel, STORIES_SHA256 } from "../src/paths.js";

const REPO = "rbee/stories";
const README = "# stories260K\nA tiny llama.\n";
const CONFIG = '{"architecture":"llama"}\n';
/** Big enough to be stored in LFS, small enough to check byte by byte. */
const BLOB = Buffer.from(Array.from({ length: 50_000 }, (_, i) => (i * 31) % 251));
const TOKEN = "hf_test_token";

let hub: HubServer;
let stories: Buffer;

beforeAll(async () => {
  stories = await readFile(requireStoriesModel());
  hub = await startHubServer({
    token: TOKEN,
    repos: {
      [REPO]: {
        files: {
          "stories260K.gguf": { path: requireStoriesModel() },
          "README.md": { content: README },
          "configs/llama/config.json": { content: CONFIG },
          "blobs/blob.bin": { content: BLOB },
        },
      },
      "rbee/gated": { gated: true, revision: "a".repeat(40), files: { "model.gguf": { content: BLOB } } },
    },
  });
});
afterAll(async () => {
  await hub.close();
});
beforeEach(() => {
  for (const k of Object.keys(hub.faults)) delete hub.faults[k as keyof typeof hub.faults];
  hub.stats.reset();
});

const sha256 = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");
const get = (path: string, init: RequestInit = {}) => fetch(`${hub.url}${path}`, { redirect: "manual", ...init });
const resolveUrl = (file: string, rev = "main", repo = REPO) => `/${repo}/resolve/${rev}/${file}`;

/** Follows the LFS redirect by hand and returns the CDN's response. */
async function viaCdn(file: string, init: RequestInit = {}): Promise<Response> {
  const redirect = await get(resolveUrl(file), init);
  expect(redirect.status).toBe(302);
  return fetch(redirect.headers.get("location")!, init);
}

describe("hub server: the API", () => {
  it("answers model info with the commit, siblings and gating, as /api/models/{id} does", async () => {
    const res = await get(`/api/models/${REPO}`);
    expect(res.status).toBe(200);
    const info = (await res.json()) as any;
    expect(info.id).toBe(REPO);
    expect(info.sha).toMatch(/^[0-9a-f]{40}$/);
    expect(info.sha).toBe(hub.revision(REPO));
    expect(info.gated).toBe(false);
    expect(info.siblings.map((s: any) => s.rfilename).sort()).toEqual(
      ["README.md", "blobs/blob.bin", "configs/llama/config.json", "stories260K.gguf"].sort(),
    );
    // without ?blobs=true siblings carry names only, as on the Hub
    expect(Object.keys(info.siblings[0])).toEqual(["rfilename"]);

    const gated = (await (await get("/api/models/rbee/gated")).json()) as any;
    expect(gated.gated).toBe("manual");
    expect(gated.sha).toBe("a".repeat(40));
  });

  it("adds sizes and LFS info with blobs=true, and answers /revision/{rev} for main and the commit", async () => {
    const info = (await (await get(`/api/models/${REPO}/revision/main?blobs=true`)).json()) as any;
    const gguf = info.siblings.find((s: any) => s.rfilename === "stories260K.gguf");
    expect(gguf).toMatchObject({ size: stories.length, lfs: { sha256: STORIES_SHA256, size: stories.length } });
    const readme = info.siblings.find((s: any) => s.rfilename === "README.md");
    expect(readme).toEqual({ rfilename: "README.md", size: README.length, blobId: gitBlobOid(Buffer.from(README)) });
    expect((await get(`/api/models/${REPO}/revision/${hub.revision(REPO)}`)).status).toBe(200);
  });

  it("lists the tree: a folder's entries, or everything with recursive=true, LFS files with their sha256", async () => {
    const root = (await (await get(`/api/models/${REPO}/tree/main`)).json()) as any[];
    expect(root.map((e) => `${e.type}:${e.path}`)).toEqual([
      "file:README.md",
      "directory:blobs",
      "directory:configs",
      "file:stories260K.gguf",
    ]);
    const gguf = root.find((e) => e.path === "stories260K.gguf");
    const pointer = lfsPointer(STORIES_SHA256, stories.length);
    expect(gguf).toEqual({
      type: "file",
      path: "stories260K.gguf",
      size: stories.length,
      oid: gitBlobOid(pointer),
      lfs: { oid: STORIES_SHA256, size: stories.length, pointerSize: pointer.length },
    });
    const readme = root.find((e) => e.path === "README.md");
    expect(readme.lfs).toBeUndefined();
    expect(readme.oid).toBe(gitBlobOid(Buffer.from(README)));

    const all = (await (await get(`/api/models/${REPO}/tree/main?recursive=true`)).json()) as any[];
    expect(all.map((e) => e.path)).toEqual([
      "README.md",
      "blobs",
      "blobs/blob.bin",
      "configs",
      "configs/llama",
      "configs/llama/config.json",
      "stories260K.gguf",
    ]);
    // a file larger than the LFS threshold is in LFS whatever its extension
    expect(all.find((e) => e.path === "blobs/blob.bin").lfs.oid).toBe(sha256(BLOB));

    const sub = (await (await get(`/api/models/${REPO}/tree/main/configs`)).json()) as any[];
    expect(sub).toEqual([expect.objectContaining({ type: "directory", path: "configs/llama" })]);
    const missing = await get(`/api/models/${REPO}/tree/main/nope`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get("x-error-code")).toBe("EntryNotFound");
  });

  it("computes git blob ids as git does", () => {
    expect(gitBlobOid(Buffer.alloc(0))).toBe("e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
    expect(gitBlobOid(Buffer.from("hello\n"))).toBe("ce013625030ba8dba906f756967f9e9ca394464a");
  });

  it("answers unknown repos, revisions and files with the Hub's error codes", async () => {
    const repo = await get("/api/models/rbee/nope");
    expect(repo.status).toBe(404);
    expect(repo.headers.get("x-error-code")).toBe("RepoNotFound");
    expect(await repo.json()).toEqual({ error: "Repository not found" });
    const rev = await get(`/api/models/${REPO}/revision/${"b".repeat(40)}`);
    expect(rev.status).toBe(404);
    expect(rev.headers.get("x-error-code")).toBe("RevisionNotFound");
    const file = await get(resolveUrl("nope.gguf"));
    expect(file.status).toBe(404);
    expect(file.headers.get("x-error-code")).toBe("EntryNotFound");
    expect((await get(resolveUrl("README.md", "v9"))).headers.get("x-error-code")).toBe("RevisionNotFound");
  });
});

describe("hub server: files", () => {
  it("redirects an LFS file to a signed CDN link on another origin, with the Hub's headers", async () => {
    for (const method of ["HEAD", "GET"]) {
      const res = await get(resolveUrl("stories260K.gguf"), { method });
      expect(res.status).toBe(302);
      expect(res.headers.get("x-repo-commit")).toBe(hub.revision(REPO));
      expect(res.headers.get("x-linked-etag")).toBe(`"${STORIES_SHA256}"`);
      expect(res.headers.get("x-linked-size")).toBe(String(stories.length));
      expect(res.headers.get("etag")).toBe(`"${STORIES_SHA256}"`);
      const location = new URL(res.headers.get("location")!);
      expect(location.origin).toBe(hub.cdnUrl);
      expect(location.origin).not.toBe(hub.url);
      expect(location.pathname).toMatch(new RegExp(`^/cdn/repos/[0-9a-f]+/${STORIES_SHA256}$`));
      expect(location.searchParams.get("Expires")).toMatch(/^\d+$/);
      expect(location.searchParams.get("Signature")).toMatch(/^[0-9a-f]{64}$/);
    }
    const head = await viaCdn("stories260K.gguf", { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe(String(stories.length));
    expect(head.headers.get("accept-ranges")).toBe("bytes");
    expect(head.headers.get("etag")).toBe(`"${STORIES_SHA256}"`);
    const body = Buffer.from(await (await viaCdn("stories260K.gguf")).arrayBuffer());
    expect(sha256(body)).toBe(STORIES_SHA256);
    expect(hub.stats.bytesServed(`${REPO}/stories260K.gguf`)).toBe(stories.length);
    expect(hub.stats.bytesServed("stories260K.gguf")).toBe(stories.length);
  });

  it("serves a small file directly with X-Repo-Commit and its git blob id as ETag", async () => {
    const res = await get(resolveUrl("configs/llama/config.json"));
    expect(res.status).toBe(200);
    expect(res.headers.get("x-repo-commit")).toBe(hub.revision(REPO));
    expect(res.headers.get("etag")).toBe(`"${gitBlobOid(Buffer.from(CONFIG))}"`);
    expect(res.headers.get("content-type")).toContain("application/json");
    expect(await res.text()).toBe(CONFIG);
    expect((await get(resolveUrl("README.md", hub.revision(REPO)))).status).toBe(200);
  });

  it("refuses a CDN link with a bad signature", async () => {
    const redirect = await get(resolveUrl("stories260K.gguf"));
    const url = new URL(redirect.headers.get("location")!);
    url.searchParams.set("Signature", "0".repeat(64));
    expect((await fetch(url)).status).toBe(403);
  });

  it("honours Range: 206 with Content-Range, suffix and open ranges, 416 past the end, If-Range", async () => {
    const part = await viaCdn("blobs/blob.bin", { headers: { range: "bytes=100-199" } });
    expect(part.status).toBe(206);
    expect(part.headers.get("content-range")).toBe(`bytes 100-199/${BLOB.length}`);
    expect(part.headers.get("content-length")).toBe("100");
    expect(Buffer.from(await part.arrayBuffer())).toEqual(BLOB.subarray(100, 200));
    const open = await viaCdn("blobs/blob.bin", { headers: { range: `bytes=${BLOB.length - 10}-` } });
    expect(Buffer.from(await open.arrayBuffer())).toEqual(BLOB.subarray(-10));
    const suffix = await viaCdn("blobs/blob.bin", { headers: { range: "bytes=-5" } });
    expect(suffix.headers.get("content-range")).toBe(`bytes ${BLOB.length - 5}-${BLOB.length - 1}/${BLOB.length}`);
    const past = await viaCdn("blobs/blob.bin", { headers: { range: `bytes=${BLOB.length}-` } });
    expect(past.status).toBe(416);
    expect(past.headers.get("content-range")).toBe(`bytes */${BLOB.length}`);
    const stale = await viaCdn("blobs/blob.bin", { headers: { range: "bytes=0-9", "if-range": '"other"' } });
    expect(stale.status).toBe(200);
    expect((await stale.arrayBuffer()).byteLength).toBe(BLOB.length);
    // small files honour ranges too
    const small = await get(resolveUrl("README.md"), { headers: { range: "bytes=2-8" } });
    expect(small.status).toBe(206);
    expect(await small.text()).toBe(README.slice(2, 9));
    expect(hub.stats.requests.filter((r) => r.range !== undefined).length).toBeGreaterThan(0);
  });

  it("parses Range headers as RFC 9110 says", () => {
    expect(parseRange(undefined, 10)).toEqual({ kind: "whole" });
    expect(parseRange("bytes=0-", 10)).toEqual({ kind: "part", start: 0, end: 9 });
    expect(parseRange("bytes=5-100", 10)).toEqual({ kind: "part", start: 5, end: 9 });
    expect(parseRange("bytes=-3", 10)).toEqual({ kind: "part", start: 7, end: 9 });
    expect(parseRange("bytes=10-", 10)).toEqual({ kind: "unsatisfiable" });
    expect(parseRange("bytes=0-1,4-5", 10)).toEqual({ kind: "whole" });
    expect(parseRange("items=0-1", 10)).toEqual({ kind: "whole" });
  });

  it("gates a gated repo's files (not its metadata) behind the token", async () => {
    expect((await get("/api/models/rbee/gated/tree/main")).status).toBe(200);
    const anonymous = await get(resolveUrl("model.gguf", "main", "rbee/gated"));
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("x-error-code")).toBe("GatedRepo");
    const wrong = await get(resolveUrl("model.gguf", "main", "rbee/gated"), {
      headers: { authorization: "Bearer nope" },
    });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("x-error-code")).toBe("GatedRepo");
    const ok = await get(resolveUrl("model.gguf", "main", "rbee/gated"), {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(ok.status).toBe(302);
    // fetch drops the token on the cross-origin redirect, as the Hub's clients do; the CDN needs none
    const followed = await fetch(`${hub.url}${resolveUrl("model.gguf", "main", "rbee/gated")}`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(Buffer.from(await followed.arrayBuffer())).toEqual(BLOB);
    const cdn = hub.stats.requests.filter((r) => r.path.startsWith("/cdn/"));
    expect(cdn.length).toBe(1);
    expect(cdn[0]!.authorized).toBe(false);
  });

  it("moves main to a new commit when a file changes", async () => {
    const before = hub.revision(REPO);
    await hub.setFile(REPO, "blobs/other.bin", { content: Buffer.alloc(20_000, 3) });
    expect(hub.revision(REPO)).not.toBe(before);
    const res = await get(resolveUrl("blobs/other.bin"));
    expect(res.headers.get("x-linked-etag")).toBe(`"${sha256(Buffer.alloc(20_000, 3))}"`);
    expect(res.headers.get("x-repo-commit")).toBe(hub.revision(REPO));
  });
});

describe("hub server: faults", () => {
  it("dropAfterBytes closes every file response after that many body bytes, until cleared", async () => {
    hub.faults.dropAfterBytes = 1000;
    for (let i = 0; i < 2; i++) {
      const res = await viaCdn("blobs/blob.bin");
      expect(res.status).toBe(200);
      await expect(res.arrayBuffer()).rejects.toThrow();
    }
    expect(hub.stats.bytesServed("blobs/blob.bin")).toBe(2000);
    delete hub.faults.dropAfterBytes;
    expect((await (await viaCdn("blobs/blob.bin")).arrayBuffer()).byteLength).toBe(BLOB.length);
  });

  it("dropOnce drops one response only", async () => {
    hub.faults.dropAfterBytes = 1000;
    hub.faults.dropOnce = true;
    await expect((await viaCdn("blobs/blob.bin")).arrayBuffer()).rejects.toThrow();
    expect(hub.faults.dropAfterBytes).toBeUndefined();
    expect((await (await viaCdn("blobs/blob.bin")).arrayBuffer()).byteLength).toBe(BLOB.length);
  });

  it("corruptByteAt flips the file's byte at that offset in the next response that carries it, then serves the file intact", async () => {
    hub.faults.corruptByteAt = 600_000;
    // a ranged read before it does not reach the offset: intact, and the fault stays armed
    const head = await viaCdn("stories260K.gguf", { headers: { range: "bytes=0-1023" } });
    expect(Buffer.from(await head.arrayBuffer()).equals(stories.subarray(0, 1024))).toBe(true);
    expect(hub.faults.corruptByteAt).toBe(600_000);
    const bad = Buffer.from(await (await viaCdn("stories260K.gguf")).arrayBuffer());
    expect(bad.length).toBe(stories.length);
    const differing = [...bad.keys()].filter((i) => bad[i] !== stories[i]);
    expect(differing).toEqual([600_000]);
    expect(hub.faults.corruptByteAt).toBeUndefined();
    expect(sha256(Buffer.from(await (await viaCdn("stories260K.gguf")).arrayBuffer()))).toBe(STORIES_SHA256);
  });

  it("wrongSha256 advertises another sha256 while the bytes stay right", async () => {
    hub.faults.wrongSha256 = true;
    const tree = (await (await get(`/api/models/${REPO}/tree/main`)).json()) as any[];
    const advertised = tree.find((e) => e.path === "stories260K.gguf").lfs.oid;
    expect(advertised).toMatch(/^[0-9a-f]{64}$/);
    expect(advertised).not.toBe(STORIES_SHA256);
    const redirect = await get(resolveUrl("stories260K.gguf"));
    expect(redirect.headers.get("x-linked-etag")).toBe(`"${advertised}"`);
    const body = Buffer.from(await (await fetch(redirect.headers.get("location")!)).arrayBuffer());
    expect(sha256(body)).toBe(STORIES_SHA256);
  });

  it("status answers every request with the code while `times` lasts, with Retry-After and rate-limit headers", async () => {
    hub.faults.status = { code: 429, times: 2, retryAfter: 7 };
    for (let i = 0; i < 2; i++) {
      const res = await get(`/api/models/${REPO}`);
      expect(res.status).toBe(429);
      expect(res.headers.get("retry-after")).toBe("7");
      expect(res.headers.get("ratelimit")).toBe('"api";r=0;t=7');
    }
    expect((await get(`/api/models/${REPO}`)).status).toBe(200);
    expect(hub.faults.status).toBeUndefined();
    hub.faults.status = { code: 503 };
    expect((await get(resolveUrl("README.md"))).status).toBe(503);
    expect((await get(resolveUrl("README.md"))).status).toBe(503);
    delete hub.faults.status;
    expect(hub.stats.requests.map((r) => r.status)).toEqual([429, 429, 200, 503, 503]);
  });

  it("ignoreRange answers 200 with the whole file", async () => {
    hub.faults.ignoreRange = true;
    const res = await viaCdn("blobs/blob.bin", { headers: { range: "bytes=100-199" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-range")).toBeNull();
    expect((await res.arrayBuffer()).byteLength).toBe(BLOB.length);
  });

  it("bytesPerSecond throttles file bodies", async () => {
    hub.faults.bytesPerSecond = 100_000;
    const t0 = performance.now();
    const body = await (await viaCdn("blobs/blob.bin")).arrayBuffer();
    // 50 kB at 100 kB/s: about half a second (a loose bound: this checks the switch, not the timer)
    expect(performance.now() - t0).toBeGreaterThan(300);
    expect(body.byteLength).toBe(BLOB.length);
  });
});
