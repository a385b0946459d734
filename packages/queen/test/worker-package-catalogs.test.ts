import { rmSync } from "node:fs";
import { join } from "node:path";
import { createAccount, type RunningCatalog, serveCatalog } from "@rbee/catalog-server";
import { type Hive, startHive } from "@rbee/hive";
import { type Queen, startQueen } from "@rbee/queen";
import { freePort } from "@rbee/server-kit";
import { getJson, postJson, quietLog, runJob, tempRbeeDirs, waitFor, writeEchoPackage } from "@rbee/testing";
import { addTrustedKey, generatePublisherKey, packDirectory, sha256Hex, signPackage } from "@rbee/worker-package";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const HEARTBEAT_MS = 300;

/**
 * The queen's view of its catalog servers (`GET /v1/worker-packages`, `GET /v1/worker-packages/{id}`),
 * for real: a catalog server on loopback with a real SQLite file holding the echo worker package,
 * signed, in three versions (and a second package in another category); a second catalog URL where
 * nothing listens; a queen whose RBEE_CATALOG_URLS names both; a hive that installs the package
 * through a queen job and reports it in its heartbeat.
 */
describe("queen: GET /v1/worker-packages merges its catalogs, names the one that is down, and says where each is installed", () => {
  const dirs = tempRbeeDirs("queen-packages");
  const key = generatePublisherKey();
  let catalog: RunningCatalog;
  let deadCatalog = "";
  let queen: Queen;
  let hive: Hive;
  let token = "";
  let reviewer = "";

  async function publish(manifest: Record<string, unknown>): Promise<void> {
    const dir = writeEchoPackage(join(dirs.root, `pkg-${Math.random().toString(36).slice(2)}`), manifest);
    const { manifest: m, tarball } = await packDirectory(dir);
    const sha256 = sha256Hex(tarball);
    const res = await postJson(
      `${catalog.url}/workers`,
      {
        package: tarball.toString("base64"),
        platform: "any",
        signature: signPackage(key.privateKeyPem, { id: m.id, version: m.version, platform: "any", sha256 }),
        public_key: key.publicKey,
      },
      { token },
    );
    if (res.status !== 201) throw new Error(`publish ${m.id}@${m.version}: ${res.status} ${res.text}`);
  }

  const list = (query = "") => getJson(`${queen.url}/v1/worker-packages${query}`);

  beforeAll(async () => {
    catalog = await serveCatalog({ dataDir: join(dirs.root, "catalog"), port: 0 });
    token = createAccount(catalog.store, "rbee-team", true);
    reviewer = createAccount(catalog.store, "alice", false);
    await publish({ version: "1.0.0" });
    await publish({ version: "1.1.0", description: "Echo worker, newer" });
    await publish({ version: "2.0.0", description: "Echo worker, a new major" });
    await publish({
      id: "echo-painter",
      version: "0.3.0",
      category: "image",
      description: "Paints nothing: an echo worker filed under image",
      capabilities: ["image-generation"],
    });
    const review = await postJson(
      `${catalog.url}/workers/echo-package/reviews`,
      { stars: 4, text: "does what it says" },
      { token: reviewer },
    );
    expect(review.status).toBe(201);
    deadCatalog = `http://127.0.0.1:${await freePort()}`;
    await addTrustedKey(dirs.configDir, { name: "rbee-team", public_key: key.publicKey });
    queen = await startQueen({
      log: quietLog("queen"),
      port: 0,
      configDir: dirs.configDir,
      cacheDir: dirs.cacheDir,
      heartbeatIntervalMs: HEARTBEAT_MS,
      catalogUrls: [catalog.url, deadCatalog],
      packageUpdateIntervalMs: 0,
    });
    hive = await startHive({
      log: quietLog("hive"),
      port: 0,
      queenUrl: queen.url,
      hiveId: "pkg-hive",
      configDir: dirs.configDir,
      cacheDir: dirs.cacheDir,
      heartbeatIntervalMs: HEARTBEAT_MS,
      workerPortStart: 20_000 + Math.floor(Math.random() * 30_000),
    });
    await waitFor(() => (queen.registry.hives.get("pkg-hive")?.state === "live" ? true : undefined));
  }, 60_000);

  afterAll(async () => {
    await hive?.close();
    await queen?.close();
    await catalog?.close();
    rmSync(dirs.root, { recursive: true, force: true });
  });

  it("lists every package of the catalog that answers, and names the one that does not", async () => {
    const r = await list();
    expect(r.status, r.text).toBe(200);
    expect(r.body.packages.map((p: { id: string }) => p.id).sort()).toEqual(["echo-package", "echo-painter"]);
    const echo = r.body.packages.find((p: { id: string }) => p.id === "echo-package");
    expect(echo).toMatchObject({
      catalog: catalog.url,
      latest_version: "2.0.0",
      category: "llm",
      rating: 4,
      review_count: 1,
      installed: [],
    });
    expect(r.body.catalogs).toEqual([
      { url: catalog.url, ok: true, total: 2 },
      { url: deadCatalog, ok: false, error: expect.stringContaining(deadCatalog) },
    ]);
    expect(r.body.catalogs[1].error).toMatch(/connection refused/);
  });

  it("filters by category, text, platform and device kind; `category=` means all", async () => {
    const image = await list("?category=image");
    expect(image.body.packages.map((p: { id: string }) => p.id)).toEqual(["echo-painter"]);
    const all = await list("?category=&q=");
    expect(all.body.packages).toHaveLength(2);
    const search = await list("?q=paints");
    expect(search.body.packages.map((p: { id: string }) => p.id)).toEqual(["echo-painter"]);
    expect((await list("?q=nothing-like-this")).body.packages).toEqual([]);
    // the echo packages are pure JavaScript (platform any): they run on every platform
    expect((await list("?platform=linux-x64")).body.packages).toHaveLength(2);
    expect((await list("?device_kind=cpu&category=llm")).body.packages.map((p: { id: string }) => p.id)).toEqual([
      "echo-package",
    ]);
  });

  it("refuses bad filters with a 400 that says which and what is allowed", async () => {
    const bad = await list("?category=video");
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(
      /category 'video' is not valid: one of llm, image, audio, embeddings, adapter/,
    );
    expect(bad.body.error.param).toBe("category");
    const unknown = await list("?sort=stars");
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.message).toMatch(
      /unknown parameter 'sort'; GET \/v1\/worker-packages takes category, platform, device_kind, q/,
    );
    const platform = await list("?platform=amiga");
    expect(platform.status).toBe(400);
    expect(platform.body.error.message).toMatch(/platform 'amiga' is not valid: must be any, or <os>-<arch>/);
    const device = await list("?device_kind=tpu");
    expect(device.status).toBe(400);
    expect(device.body.error.message).toMatch(/one of cpu, cuda/);
  });

  it("describes one package: versions, platforms, rating, reviews", async () => {
    const r = await getJson(`${queen.url}/v1/worker-packages/echo-package`);
    expect(r.status, r.text).toBe(200);
    expect(r.body).toMatchObject({
      id: "echo-package",
      catalog: catalog.url,
      latest_version: "2.0.0",
      platforms: ["any"],
      rating: 4,
      reviews: [{ user: "alice", stars: 4, text: "does what it says" }],
      installed: [],
    });
    expect(r.body.versions.map((v: { version: string }) => v.version).sort()).toEqual(["1.0.0", "1.1.0", "2.0.0"]);
    expect(r.body.versions[0].artifacts[0]).toMatchObject({ platform: "any", public_key: key.publicKey });
    // found in the first catalog: the dead one was never asked
    expect(r.body.catalogs).toEqual([{ url: catalog.url, ok: true }]);
  });

  it("a package no catalog has: 404, naming the catalog that is down, or the catalogs asked; 400 for a bad id", async () => {
    const missing = await getJson(`${queen.url}/v1/worker-packages/no-such-package`);
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe("worker_not_found");
    expect(missing.body.error.message).toContain(`was not found in ${catalog.url}`);
    expect(missing.body.error.message).toContain(`${deadCatalog} (cannot reach catalog ${deadCatalog}`);
    expect(missing.body.error.message).toContain("it may be there: start it again");

    const onlyLive = await startQueen({
      log: quietLog("queen2"),
      port: 0,
      configDir: join(dirs.root, "queen2-config"),
      cacheDir: join(dirs.root, "queen2-cache"),
      catalogUrls: [catalog.url],
      packageUpdateIntervalMs: 0,
    });
    try {
      const notFound = await getJson(`${onlyLive.url}/v1/worker-packages/no-such-package`);
      expect(notFound.status).toBe(404);
      expect(notFound.body.error.code).toBe("worker_not_found");
      expect(notFound.body.error.message).toMatch(
        /no catalog of this queen has worker package 'no-such-package' \(asked http:\/\/127\.0\.0\.1:\d+\); .*RBEE_CATALOG_URLS/,
      );
    } finally {
      await onlyLive.close();
    }

    const badId = await getJson(`${queen.url}/v1/worker-packages/Bad..Id`);
    expect(badId.status).toBe(400);
    expect(badId.body.error.message).toMatch(/'Bad\.\.Id' is not a worker package id/);
    const param = await getJson(`${queen.url}/v1/worker-packages/echo-package?version=1.0.0`);
    expect(param.status).toBe(400);
    expect(param.body.error.message).toMatch(/unknown parameter 'version'/);
  });

  it("an installed package names its hive, version and trust, and the update within its major (1.1.0, not 2.0.0)", async () => {
    const job = await runJob(queen.url, { type: "install_worker_package", id: "echo-package", version: "1.0.0" });
    expect(job.error, JSON.stringify(job.events)).toBeUndefined();
    const installed = await waitFor(async () => {
      const r = await list("?category=llm");
      const echo = r.body.packages.find((p: { id: string }) => p.id === "echo-package");
      return echo?.installed.length === 1 ? echo.installed[0] : undefined;
    });
    expect(installed).toEqual({
      hive_id: "pkg-hive",
      hive_state: "live",
      version: "1.0.0",
      status: "Available",
      trust: "verified",
      auto_update: false,
      catalog: catalog.url,
      update_available: "1.1.0",
    });
    const detail = await getJson(`${queen.url}/v1/worker-packages/echo-package`);
    expect(detail.body.installed).toEqual([installed]);
    // the other package is installed nowhere
    const painter = (await list()).body.packages.find((p: { id: string }) => p.id === "echo-painter");
    expect(painter.installed).toEqual([]);

    const update = await runJob(queen.url, { type: "update_worker_package", id: "echo-package" });
    expect(update.error, JSON.stringify(update.events)).toBeUndefined();
    const after = await waitFor(async () => {
      const r = await getJson(`${queen.url}/v1/worker-packages/echo-package`);
      return r.body.installed[0]?.version === "1.1.0" ? r.body.installed[0] : undefined;
    });
    // the newest of major 1: nothing more to take without --major
    expect(after).toMatchObject({ version: "1.1.0", update_available: null });
  }, 120_000);

  it("is behind the same auth as the queen's other routes once a key exists", async () => {
    const created = await postJson(`${queen.url}/v1/keys`, { name: "admin" });
    expect(created.status).toBe(201);
    const refused = await list();
    expect(refused.status).toBe(401);
    const withKey = await getJson(`${queen.url}/v1/worker-packages?q=echo`, created.body.key);
    expect(withKey.status).toBe(200);
    expect((await getJson(`${queen.url}/v1/worker-packages/echo-package`)).status).toBe(401);
  });
});
