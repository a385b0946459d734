import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type BlobStore,
  createAccount,
  DirectoryBlobStore,
  type RunningCatalog,
  S3BlobStore,
  serveCatalog,
} from "@rbee/catalog-server";
import { CatalogWorkerDetail, CatalogWorkerList } from "@rbee/contract";
import { S3ApiFixture, writeEchoPackage } from "@rbee/testing";
import { generatePublisherKey, packDirectory, sha256Hex, signPackage } from "@rbee/worker-package";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * The two blob stores every test below runs against: a directory, and an S3 bucket (the S3 API
 * FIXTURE, which checks every request's SigV4 signature).
 */
const BLOB_STORES: Array<{
  name: string;
  setup: (dataDir: string) => Promise<{ blobs: () => Promise<BlobStore>; stop: () => Promise<void> }>;
}> = [
  {
    name: "a blob directory",
    setup: async (dataDir) => ({
      blobs: async () => new DirectoryBlobStore(join(dataDir, "blobs")),
      stop: async () => {},
    }),
  },
  {
    name: "an S3 bucket (S3 API fixture)",
    setup: async () => {
      const s3 = new S3ApiFixture({
        accessKeyId: "AKIDCATALOGTEST",
        secretAccessKey: "catalog-test-secret",
        region: "eu-west-1",
        buckets: ["rbee-packages"],
      });
      const url = await s3.start();
      return {
        blobs: () =>
          S3BlobStore.open({
            bucket: "rbee-packages",
            prefix: "catalog/blobs",
            region: "eu-west-1",
            credentials: { accessKeyId: "AKIDCATALOGTEST", secretAccessKey: "catalog-test-secret" },
            endpoint: new URL(url),
          }),
        stop: () => s3.stop(),
      };
    },
  },
];

/**
 * The catalog server for real: Hono on Node on a loopback port, a real SQLite file and a blob
 * store (a directory, and an S3 bucket), the echo worker packaged and signed as `rbee worker
 * publish` does.
 */
describe.each(BLOB_STORES)("catalog server on $name: publish, list, search, download, reviews", ({ setup }) => {
  const root = mkdtempSync(join(tmpdir(), "rbee-catalog-"));
  const dataDir = join(root, "data");
  let store: Awaited<ReturnType<typeof setup>>;
  let catalog: RunningCatalog;
  let token: string;
  let reviewer: string;
  const key = generatePublisherKey();

  async function signedBody(manifest: Record<string, unknown>, platform = "any", signWith = key) {
    const dir = writeEchoPackage(join(root, `pkg-${Math.random().toString(36).slice(2)}`), manifest);
    const { manifest: m, tarball } = await packDirectory(dir);
    const sha256 = sha256Hex(tarball);
    const signature = signPackage(signWith.privateKeyPem, { id: m.id, version: m.version, platform, sha256 });
    return {
      package: tarball.toString("base64"),
      platform,
      signature,
      public_key: signWith.publicKey,
      sha256,
      tarball,
    };
  }

  /** What POST /workers takes of a signed body (another signature, to forge one). */
  const wire = (
    b: { package: string; platform: string; signature: string; public_key: string },
    signature = b.signature,
  ) => ({
    package: b.package,
    platform: b.platform,
    signature,
    public_key: b.public_key,
  });

  async function publish(body: object, auth = token) {
    const res = await fetch(`${catalog.url}/workers`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${auth}` },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  }

  async function get(path: string) {
    const res = await fetch(`${catalog.url}${path}`);
    return { status: res.status, body: (await res.json()) as any };
  }

  beforeAll(async () => {
    store = await setup(dataDir);
    catalog = await serveCatalog({
      dataDir,
      blobs: await store.blobs(),
      port: 0,
      maxUploadBytes: 2 * 1024 * 1024,
      writeLimit: { max: 40, windowMs: 60_000 },
    });
    token = createAccount(catalog.store, "rbee-team", true);
    reviewer = createAccount(catalog.store, "alice", false);
  });
  afterAll(async () => {
    await catalog?.close();
    await store?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it("publishes the echo worker package; a version is immutable; the signature and the token are checked", async () => {
    const { sha256, tarball, ...body } = await signedBody({});
    const first = await publish(body);
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    expect(first.body).toMatchObject({ id: "echo-package", version: "1.0.0", sha256, size_bytes: tarball.length });

    const again = await publish(
      (({ sha256: _, tarball: __, ...b }) => b)(await signedBody({ description: "changed" })),
    );
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({ code: "version_exists" });
    expect(again.body.error.message).toMatch(
      /already published, and published versions never change; raise the version/,
    );
    // the very same bytes again are refused too
    expect((await publish(body)).status).toBe(409);

    const newer = await signedBody({ version: "1.1.0", description: "echo, newer" });
    expect((await publish({ ...newer, sha256: undefined, tarball: undefined })).status).toBe(201);

    const bad = await signedBody({ version: "1.2.0" });
    const forged = await publish(wire(bad, newer.signature));
    expect(forged.status).toBe(400);
    expect(forged.body.error.code).toBe("bad_signature");

    const otherKey = generatePublisherKey();
    const byOther = await signedBody({ version: "1.2.0" }, "any", otherKey);
    const wrongKey = await publish(wire(byOther));
    expect(wrongKey.status).toBe(403);
    expect(wrongKey.body.error.code).toBe("wrong_publisher_key");

    const noToken = await publish(wire(bad), "nope");
    expect(noToken.status).toBe(401);
    const reviewerPublishes = await publish(wire(bad), reviewer);
    expect(reviewerPublishes.status).toBe(403);

    const invalid = await publish({ package: "aGVsbG8=", platform: "any", signature: "x", public_key: key.publicKey });
    expect(invalid.status).toBe(400);
    expect(invalid.body.error.code).toBe("invalid_package");
    const missing = await publish({ platform: "any" });
    expect(missing.status).toBe(400);
    expect(missing.body.error.message).toMatch(/invalid publish request: package/);
    const badManifest = await signedBody({ id: "Bad Id" }).catch((e: Error) => e);
    expect(String(badManifest)).toMatch(/must be a worker type id/);
  });

  it("lists, filters by category, platform and device kind, searches text, and paginates", async () => {
    const {
      sha256: _,
      tarball: __,
      ...img
    } = await signedBody(
      {
        id: "pixel-paint",
        description: "Paints pictures from prompts",
        category: "image",
        capabilities: ["image-generation"],
        device_kinds: ["cuda"],
        platforms: ["linux-x64"],
      },
      "linux-x64",
    );
    expect((await publish(img)).status).toBe(201);

    const all = CatalogWorkerList.parse((await get("/workers")).body);
    expect(all.workers.map((w) => w.id)).toEqual(["echo-package", "pixel-paint"]);
    expect(all.workers[0]).toMatchObject({
      latest_version: "1.1.0",
      description: "echo, newer",
      install_command: "rbee worker install echo-package",
    });
    expect((await get("/workers?category=image")).body.workers.map((w: any) => w.id)).toEqual(["pixel-paint"]);
    expect((await get("/workers?category=llm")).body.workers.map((w: any) => w.id)).toEqual(["echo-package"]);
    expect((await get("/workers?device_kind=cuda")).body.workers.map((w: any) => w.id)).toEqual(["pixel-paint"]);
    // a pure-JavaScript package ("any") runs on every platform
    expect((await get("/workers?platform=darwin-arm64")).body.workers.map((w: any) => w.id)).toEqual(["echo-package"]);
    expect((await get("/workers?q=PICTURES")).body.workers.map((w: any) => w.id)).toEqual(["pixel-paint"]);
    expect((await get("/workers?q=echo%20newer")).body.workers.map((w: any) => w.id)).toEqual(["echo-package"]);
    const page2 = (await get("/workers?per_page=1&page=2")).body;
    expect(page2).toMatchObject({ total: 2, page: 2, per_page: 1 });
    expect(page2.workers.map((w: any) => w.id)).toEqual(["pixel-paint"]);

    const bad = await get("/workers?category=video");
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/category/);
    expect((await get("/workers?per_page=1000")).status).toBe(400);
    expect((await get("/workers?sort=stars")).status).toBe(400);

    const cats = (await get("/categories")).body.categories;
    expect(cats.map((c: any) => c.id)).toEqual(["llm", "image", "audio", "embeddings", "adapter"]);
    expect(cats.find((c: any) => c.id === "image").count).toBe(1);
  });

  it("describes a package with its versions, sha256 per artifact and signature; unknown ids are 404", async () => {
    const detail = CatalogWorkerDetail.parse((await get("/workers/echo-package")).body);
    expect(detail.versions.map((v) => v.version)).toEqual(["1.1.0", "1.0.0"]);
    expect(detail.versions[1]?.artifacts[0]).toMatchObject({ platform: "any", public_key: key.publicKey });
    expect(detail.versions[1]?.artifacts[0]?.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(detail.versions[0]?.manifest.entry).toBe("echo-worker.mjs");
    const missing = await get("/workers/no-such");
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe("worker_not_found");
  });

  it("serves a download whole and by Range, with its sha256 in a header", async () => {
    const detail = (await get("/workers/echo-package")).body;
    const art = detail.versions.find((v: any) => v.version === "1.0.0").artifacts[0];
    const whole = await fetch(`${catalog.url}/workers/echo-package/download?version=1.0.0&platform=linux-x64`);
    expect(whole.status).toBe(200);
    expect(whole.headers.get("x-checksum-sha256")).toBe(art.sha256);
    expect(whole.headers.get("accept-ranges")).toBe("bytes");
    const bytes = Buffer.from(await whole.arrayBuffer());
    expect(sha256Hex(bytes)).toBe(art.sha256);
    const part = await fetch(`${catalog.url}/workers/echo-package/download?version=1.0.0`, {
      headers: { range: "bytes=100-" },
    });
    expect(part.status).toBe(206);
    expect(part.headers.get("content-range")).toBe(`bytes 100-${bytes.length - 1}/${bytes.length}`);
    expect(Buffer.from(await part.arrayBuffer())).toEqual(bytes.subarray(100));
    const tail = await fetch(`${catalog.url}/workers/echo-package/download?version=1.0.0`, {
      headers: { range: "bytes=-10" },
    });
    expect(Buffer.from(await tail.arrayBuffer())).toEqual(bytes.subarray(bytes.length - 10));
    const beyond = await fetch(`${catalog.url}/workers/echo-package/download`, {
      headers: { range: `bytes=${bytes.length * 10}-` },
    });
    expect(beyond.status).toBe(416);
    const latest = await fetch(`${catalog.url}/workers/echo-package/download`);
    expect(latest.headers.get("content-disposition")).toMatch(/echo-package-1\.1\.0-any\.tar/);
    await latest.arrayBuffer();
    const noVersion = await get("/workers/echo-package/download?version=9.0.0");
    expect(noVersion.status).toBe(404);
    expect(noVersion.body.error.message).toMatch(/has no version 9\.0\.0; it has 1\.0\.0, 1\.1\.0/);
    const noPlatform = await get("/workers/pixel-paint/download?platform=darwin-arm64");
    expect(noPlatform.status).toBe(404);
    expect(noPlatform.body.error.code).toBe("platform_not_found");
  });

  it("takes one review per user, editable, needs an account, and shows the rating", async () => {
    const post = (body: unknown, auth?: string) =>
      fetch(`${catalog.url}/workers/echo-package/reviews`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(auth ? { authorization: `Bearer ${auth}` } : {}) },
        body: JSON.stringify(body),
      });
    const first = await post({ stars: 2, text: "too simple" }, reviewer);
    expect(first.status).toBe(201);
    const edited = await post({ stars: 4, text: "simple, on purpose" }, reviewer);
    expect(edited.status).toBe(200);
    expect((await post({ stars: 5, text: "ours" }, token)).status).toBe(201);
    const detail = (await get("/workers/echo-package")).body;
    expect(detail.review_count).toBe(2);
    expect(detail.rating).toBe(4.5);
    expect(detail.reviews.find((r: any) => r.user === "alice")).toMatchObject({ stars: 4, text: "simple, on purpose" });

    const zero = await post({ stars: 0, text: "x" }, reviewer);
    expect(zero.status).toBe(400);
    expect(((await zero.json()) as any).error.message).toMatch(/stars/);
    expect((await post({ stars: 6 }, reviewer)).status).toBe(400);
    const anonymous = await post({ stars: 5 });
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as any).error.message).toMatch(/Authorization: Bearer/);
    const notJson = await fetch(`${catalog.url}/workers/echo-package/reviews`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${reviewer}` },
      body: "{nope",
    });
    expect(notJson.status).toBe(400);
  });

  it("refuses an upload over the size limit with 413 (the last test on this server: it answers before reading the body, and drops the connection)", async () => {
    const res = await fetch(`${catalog.url}/workers`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({
        package: "A".repeat(3 * 1024 * 1024),
        platform: "any",
        signature: "x",
        public_key: key.publicKey,
      }),
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as any).error.code).toBe("payload_too_large");
  });

  it("keeps everything in its SQLite file across a restart", async () => {
    await catalog.close();
    catalog = await serveCatalog({ dataDir, blobs: await store.blobs(), port: 0 });
    const detail = (await get("/workers/echo-package")).body;
    expect(detail.versions.length).toBe(2);
    expect(detail.review_count).toBe(2);
    const dl = await fetch(`${catalog.url}/workers/echo-package/download?version=1.0.0`);
    expect(dl.status).toBe(200);
    await dl.arrayBuffer();
  });

  it("limits writes per client with 429 and Retry-After", async () => {
    await catalog.close();
    catalog = await serveCatalog({
      dataDir,
      blobs: await store.blobs(),
      port: 0,
      writeLimit: { max: 2, windowMs: 60_000 },
    });
    const post = () =>
      fetch(`${catalog.url}/workers/echo-package/reviews`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${reviewer}` },
        body: JSON.stringify({ stars: 3 }),
      });
    expect((await post()).status).toBe(200);
    expect((await post()).status).toBe(200);
    const limited = await post();
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(((await limited.json()) as any).error.code).toBe("rate_limited");
  });
});
