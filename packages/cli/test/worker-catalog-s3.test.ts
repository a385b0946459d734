import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type ChildHandle,
  ECHO_PACKAGE_DIR,
  getJson,
  postJson,
  postSse,
  runJob,
  runRbee,
  S3ApiFixture,
  startRbee,
  waitFor,
  writeEchoPackage,
} from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "./helpers.js";

/**
 * The worker marketplace with its artifacts in object storage: `rbee catalog serve --blobs
 * s3://bucket/prefix` against the S3 API FIXTURE (which verifies every request's SigV4 signature
 * with its secret), a queen and a hive as processes. A package is published into the bucket,
 * installed on the hive through the queen, spawned and asked; an interrupted download resumes with
 * a Range that the catalog passes on to the bucket. A catalog whose bucket refuses it does not start.
 * On the same cluster: a spawn's configuration, checked against the package's config_schema.
 */
describe("worker catalog on object storage (the S3 API fixture), and a package's configuration", {
  timeout: 240_000,
}, () => {
  const root = mkdtempSync(join(tmpdir(), "rbee-catalog-s3-"));
  const clusterToken = randomBytes(24).toString("hex");
  const dataDir = join(root, "catalog-data");
  const publisherCfg = join(root, "publisher-config");
  const children: ChildHandle[] = [];
  const s3Creds = { accessKeyId: "AKIDRBEECATALOG", secretAccessKey: "rbee/catalog+s3-secret" };
  const s3 = new S3ApiFixture({ ...s3Creds, region: "eu-north-1", buckets: ["rbee-packages"] });
  let s3Env: NodeJS.ProcessEnv = {};
  let catalogUrl = "";
  let queenUrl = "";
  let publisherToken = "";

  const base = (configDir: string, cacheDir = join(root, "cli-cache")): NodeJS.ProcessEnv => ({
    RBEE_CONFIG_DIR: configDir,
    RBEE_CACHE_DIR: cacheDir,
    RBEE_CLUSTER_TOKEN: clusterToken,
    RBEE_API_KEY: "",
    RBEE_LOG_LEVEL: "warn",
  });
  const cli = (args: string[], configDir = join(root, "user-config"), env: NodeJS.ProcessEnv = {}) =>
    runRbee(args, {
      env: { ...base(configDir), RBEE_QUEEN_URL: queenUrl, RBEE_CATALOG_URLS: catalogUrl, ...env },
      timeoutMs: 120_000,
    });
  const ok = async (args: string[], configDir?: string) => {
    const r = await cli(args, configDir);
    if (r.code !== 0) throw new Error(`rbee ${args.join(" ")} exited ${r.code}:\n${r.stderr}\n${r.stdout}`);
    return r.stdout;
  };
  const publishVersion = (version: string) =>
    ok(
      [
        "worker",
        "publish",
        writeEchoPackage(join(root, `pkg-${version}`), { version }),
        "--token",
        publisherToken,
        "--catalog",
        catalogUrl,
      ],
      publisherCfg,
    );
  /** The ids of the workers serving a model (not stopped or failed). */
  const servingIds = async (model: string) =>
    (
      (await getJson(`${queenUrl}/v1/cluster`)).body.workers as Array<{
        worker_id: string;
        model: string;
        status: string;
      }>
    )
      .filter((w) => w.model === model && !["Stopped", "Stopping", "Failed"].includes(w.status))
      .map((w) => w.worker_id);
  const installedVersion = async () => {
    const r = await getJson(`${queenUrl}/v1/worker-types`);
    const h = r.body.hives.find((x: { hive_id: string }) => x.hive_id === "hive-s3");
    return h?.worker_types.find((t: { id: string }) => t.id === "echo-package")?.version as string | undefined;
  };

  beforeAll(async () => {
    const s3Url = await s3.start();
    s3Env = {
      AWS_ENDPOINT_URL_S3: s3Url,
      AWS_REGION: "eu-north-1",
      AWS_ACCESS_KEY_ID: s3Creds.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3Creds.secretAccessKey,
      AWS_SESSION_TOKEN: "",
    };
    const publisherKey = (await ok(["catalog", "keygen"], publisherCfg)).trim();
    publisherToken = (
      await ok(["catalog", "account", "add", "rbee-team", "--publisher", "--data-dir", dataDir])
    ).trim();
    const catalog = startRbee(
      [
        "catalog",
        "serve",
        "--port",
        "0",
        "--data-dir",
        dataDir,
        "--blobs",
        "s3://rbee-packages/catalog/v1",
        "--download-rate",
        "131072",
      ],
      { env: { ...base(join(root, "catalog-config")), ...s3Env } },
    );
    children.push(catalog);
    catalogUrl = (await catalog.waitForLine(/catalog server listening on (http:\/\/\S+)/))[1] as string;

    const queenPort = await freePort();
    queenUrl = `http://127.0.0.1:${queenPort}`;
    children.push(
      startRbee(["queen", "start", "--foreground", "--port", String(queenPort)], {
        env: { ...base(join(root, "queen-config"), join(root, "queen-cache")), RBEE_HEARTBEAT_INTERVAL_MS: "1000" },
      }),
    );
    await waitFor(
      async () => ((await getJson(`${queenUrl}/health`).catch(() => undefined))?.status === 200 ? true : undefined),
      30_000,
    );
    await ok(["catalog", "trust", "rbee-team", publisherKey], join(root, "hive-config"));
    children.push(
      startRbee(["hive", "start", "--foreground", "--port", "0", "--hive-id", "hive-s3"], {
        env: {
          ...base(join(root, "hive-config"), join(root, "hive-cache")),
          RBEE_QUEEN_URL: queenUrl,
          RBEE_HEARTBEAT_INTERVAL_MS: "1000",
          RBEE_WORKER_PORT_START: String(20_000 + Math.floor(Math.random() * 30_000)),
          RBEE_DEVICES: "[]",
        },
      }),
    );
    await waitFor(
      async () => ((await getJson(`${queenUrl}/v1/worker-types`)).body.hives?.length ? true : undefined),
      60_000,
    );
  }, 180_000);

  afterAll(async () => {
    for (const c of children.reverse()) await c.stop(10_000).catch(() => undefined);
    await s3.stop();
    rmSync(root, { recursive: true, force: true });
  }, 60_000);

  it("a catalog whose bucket refuses it does not start, and says why: no credentials, no bucket, a wrong secret", async () => {
    const serve = (blobs: string, env: NodeJS.ProcessEnv) =>
      cli(["catalog", "serve", "--port", "0", "--data-dir", join(root, "refused-data"), "--blobs", blobs], undefined, {
        ...s3Env,
        ...env,
      });
    const noCreds = await serve("s3://rbee-packages/x", { AWS_ACCESS_KEY_ID: "", AWS_SECRET_ACCESS_KEY: "" });
    expect(noCreds.code).toBe(2);
    expect(noCreds.stderr).toMatch(
      /--blobs s3:\/\/rbee-packages\/x needs credentials for the bucket, and AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set/,
    );
    const noBucket = await serve("s3://no-such-bucket/x", {});
    expect(noBucket.code).toBe(2);
    expect(noBucket.stderr).toMatch(
      /bucket 'no-such-bucket' does not exist at http:\/\/127\.0\.0\.1:\d+ \(404 NoSuchBucket/,
    );
    const wrongSecret = await serve("s3://rbee-packages/x", { AWS_SECRET_ACCESS_KEY: "not-the-secret" });
    expect(wrongSecret.code).toBe(2);
    expect(wrongSecret.stderr).toMatch(
      /refused the request's signature \(403 SignatureDoesNotMatch.*check AWS_SECRET_ACCESS_KEY/,
    );
    expect(`${noCreds.stderr}${noBucket.stderr}${wrongSecret.stderr}`).not.toMatch(/at .*\.js:\d+/);
  });

  it("publishes into the bucket, installs on the hive through the queen, and a worker of it answers", async () => {
    const out = await ok(
      ["worker", "publish", ECHO_PACKAGE_DIR, "--token", publisherToken, "--catalog", catalogUrl],
      publisherCfg,
    );
    const sha256 = /sha256 ([0-9a-f]{64})/.exec(out)?.[1] as string;
    expect(s3.object("rbee-packages", `catalog/v1/${sha256}`)?.length).toBeGreaterThan(0);
    expect(await ok(["worker", "install", "echo-package", "--hive", "hive-s3"])).toMatch(
      /^echo-package@1\.0\.0 installed on hive-s3 \(signature verified\)$/m,
    );
    const job = await runJob(queenUrl, { type: "spawn_worker", model: "parrot", worker_type: "echo-package" });
    expect(job.error?.message).toBeUndefined();
    const r = await postJson(`${queenUrl}/v1/chat/completions`, {
      model: "parrot",
      messages: [{ role: "user", content: "from the bucket" }],
      max_tokens: 2,
    });
    expect(r.body.choices[0].message.content).toBe("from the");
  });

  it("a spawn's configuration is checked against the package's config_schema (400 naming the field), defaults filled in, and reaches the worker as RBEE_WORKER_CONFIG", async () => {
    // what it takes, as `rbee worker info` shows it
    const info = await ok(["worker", "info", "echo-package"]);
    expect(info).toMatch(
      /^config\s+case: one of "as-is", "upper", "lower" \(default "as-is"\): the letters of the echo$/m,
    );
    expect(info).toMatch(/^\s+max_words: a whole number from 1 to 10000: echo at most this many words$/m);
    // through the CLI and the queen: the echo package's `case` and `max_words` settings
    const id = (
      await ok([
        "worker",
        "spawn",
        "-m",
        "shouty",
        "--type",
        "echo-package",
        "--config",
        "case=upper",
        "--config",
        "max_words=2",
        "-q",
      ])
    ).trim();
    const r = await postJson(`${queenUrl}/v1/chat/completions`, {
      model: "shouty",
      messages: [{ role: "user", content: "hello there world" }],
    });
    expect(r.status, r.text).toBe(200);
    expect(r.body.choices[0].message.content).toBe("HELLO THERE");

    // the hive kept what it gave each worker: the defaults filled in for the one spawned without config
    const hiveUrl = (await getJson(`${queenUrl}/v1/cluster`)).body.hives[0].url as string;
    const reports = (await getJson(`${hiveUrl}/v1/workers`, clusterToken)).body.workers as Array<{
      worker_id: string;
      model: string;
      config?: unknown;
    }>;
    expect(reports.find((w) => w.worker_id === id)?.config).toEqual({ case: "upper", max_words: 2 });
    expect(reports.find((w) => w.model === "parrot")?.config).toEqual({ case: "as-is" });

    // refused with what was expected: by the CLI (through the queen), the queen's API, the hive's API
    const loud = await cli(["worker", "spawn", "-m", "loud", "--type", "echo-package", "--config", "case=loud"]);
    expect(loud.code).toBe(1);
    expect(loud.stderr).toMatch(
      /config\.case must be one of "as-is", "upper", "lower", got "loud": worker type 'echo-package' refuses this configuration/,
    );
    const json = await cli(["worker", "spawn", "-m", "x", "--type", "echo-package", "--config-json", "{nope"]);
    expect(json.code).toBe(2);
    expect(json.stderr).toMatch(/--config-json: not JSON/);
    const job = await postJson(`${queenUrl}/v1/jobs`, {
      operation: { type: "spawn_worker", model: "x", worker_type: "echo-package", config: { colour: "red" } },
    });
    expect(job.status).toBe(400);
    expect(job.body.error).toMatchObject({ param: "config.colour" });
    expect(job.body.error.message).toMatch(
      /config\.colour is not a setting of this worker type; it takes case, max_words/,
    );
    const builtIn = await postJson(`${queenUrl}/v1/jobs`, {
      operation: { type: "spawn_worker", model: "x", worker_type: "echo", config: { case: "upper" } },
    });
    expect(builtIn.status).toBe(400);
    expect(builtIn.body.error.message).toMatch(/worker type 'echo' takes no configuration/);
    const atHive = await postJson(
      `${hiveUrl}/v1/workers`,
      { worker_type: "echo-package", model: "x", config: { max_words: 0 } },
      { token: clusterToken },
    );
    expect(atHive.status).toBe(400);
    expect(atHive.body.error).toMatchObject({ param: "config.max_words" });
    expect(atHive.body.error.message).toMatch(/config\.max_words must be a whole number from 1 to 10000, got 0/);
  });

  it("a configured worker that crashes is restarted by its hive with the same configuration", async () => {
    const hiveUrl = (await getJson(`${queenUrl}/v1/cluster`)).body.hives[0].url as string;
    const shouty = async () =>
      ((await getJson(`${hiveUrl}/v1/workers`, clusterToken)).body.workers as Array<Record<string, any>>).find(
        (w) => w.model === "shouty",
      );
    const before = await shouty();
    expect(before?.pid).toBeGreaterThan(0);
    process.kill(before?.pid, "SIGKILL");
    await waitFor(
      async () => {
        const w = await shouty();
        return w !== undefined && w.restarts > before?.restarts && w.status === "Ready" && w.pid !== before?.pid
          ? true
          : undefined;
      },
      60_000,
      "the hive restarting the killed worker",
    );
    expect((await shouty())?.config).toEqual({ case: "upper", max_words: 2 });
    // the queen learns of the restart from the hive's next heartbeat
    await waitFor(async () => {
      const ws = (await getJson(`${queenUrl}/v1/cluster`)).body.workers as Array<Record<string, any>>;
      return ws.some((w) => w.model === "shouty" && w.status === "Ready" && w.routable) ? true : undefined;
    }, 15_000);
    const r = await postJson(`${queenUrl}/v1/chat/completions`, {
      model: "shouty",
      messages: [{ role: "user", content: "back again and loud" }],
    });
    expect(r.status, r.text).toBe(200);
    expect(r.body.choices[0].message.content).toBe("BACK AGAIN");
  });

  it("an interrupted download resumes where it stopped, with a Range the catalog passes on to the bucket", async () => {
    const dir = writeEchoPackage(join(root, "pkg-big"), { version: "1.1.0" });
    writeFileSync(join(dir, "padding.bin"), randomBytes(1024 * 1024));
    const out = await ok(["worker", "publish", dir, "--token", publisherToken, "--catalog", catalogUrl], publisherCfg);
    const key = `catalog/v1/${/sha256 ([0-9a-f]{64})/.exec(out)?.[1]}`;
    const operation = {
      type: "install_worker_package",
      id: "echo-package",
      version: "1.1.0",
      hive: "hive-s3",
      catalogs: [catalogUrl],
    };
    const created = await postJson(`${queenUrl}/v1/jobs`, { operation });
    expect(created.status).toBe(202);
    let cancelled = false;
    await postSse(`${queenUrl}${created.body.sse_url}`, undefined, {
      method: "GET",
      onEvent: (e) => {
        if (!cancelled && e.data?.type === "progress" && e.data.done > 300_000) {
          cancelled = true;
          void fetch(`${queenUrl}/v1/jobs/${created.body.job_id}`, { method: "DELETE" });
        }
        return undefined;
      },
    });
    expect(cancelled).toBe(true);
    expect(await installedVersion()).toBe("1.0.0");
    // the hive may still be winding the cancelled install down for a moment: it says so, and a retry works
    const again = await waitFor(async () => {
      const r = await runJob(queenUrl, operation);
      return /is being installed or changed already/.test(r.error?.message ?? "") ? undefined : r;
    }, 30_000);
    expect(again.error?.message).toBeUndefined();
    const said = again.events.filter((e) => e.type === "narration").map((e) => String(e.message));
    const resumed = said.find((m) => /resumed the download of echo-package@1\.1\.0 at byte \d+/.test(m));
    expect(resumed, said.join("\n")).toBeDefined();
    const at = Number(/at byte (\d+)/.exec(resumed ?? "")?.[1]);
    expect(at).toBeGreaterThan(300_000);
    // the hive's Range reached the bucket as a GetObject Range from that byte
    const gets = s3.requests.filter((r) => r.method === "GET" && r.key === key);
    expect(gets.map((g) => g.range)).toContain(`bytes=${at}-${(s3.object("rbee-packages", key)?.length ?? 0) - 1}`);
    expect(gets.every((g) => g.status === 206)).toBe(true);
    expect(await installedVersion()).toBe("1.1.0");
  });

  it("an update replaces a configured worker with one of the new version, with the same configuration", async () => {
    const before = await servingIds("shouty");
    expect(before.length).toBe(1);
    await publishVersion("1.2.0");
    expect(await ok(["worker", "update", "echo-package", "--hive", "hive-s3"])).toMatch(
      /^echo-package on hive-s3: 1\.1\.0 -> 1\.2\.0$/m,
    );
    await waitFor(async () => {
      const now = await servingIds("shouty");
      return now.length === 1 && now[0] !== before[0] ? true : undefined;
    }, 30_000);
    const r = await postJson(`${queenUrl}/v1/chat/completions`, {
      model: "shouty",
      messages: [{ role: "user", content: "still loud after the update" }],
    });
    expect(r.body.choices[0].message.content).toBe("STILL LOUD");
  });
});
