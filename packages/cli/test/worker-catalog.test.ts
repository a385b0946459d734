import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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
  startRbee,
  waitFor,
  writeEchoPackage,
} from "@rbee/testing";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "./helpers.js";

/**
 * The worker marketplace end to end, every piece a real process: a catalog server (`rbee catalog
 * serve`, its own SQLite file and blob directory), a queen and two hives, each hive with its own
 * cache and its own trusted publisher keys. The echo worker is published as a package, found,
 * installed on both hives through the queen, spawned and asked; then what must be refused is
 * (a tampered artifact, a bad signature, an untrusted signer), an interrupted download resumes,
 * and an update that does not start is rolled back.
 */
describe("worker catalog: publish, find, install on two hives, spawn, verify, resume, update", {
  timeout: 300_000,
}, () => {
  const root = mkdtempSync(join(tmpdir(), "rbee-worker-catalog-"));
  const clusterToken = randomBytes(24).toString("hex");
  const dataDir = join(root, "catalog-data");
  const publisherCfg = join(root, "publisher-config");
  const strangerCfg = join(root, "stranger-config");
  const children: ChildHandle[] = [];
  let catalogUrl = "";
  let queenUrl = "";
  let publisherToken = "";
  let strangerToken = "";
  let publisherKey = "";
  const hives = ["hive-a", "hive-b"] as const;

  const base = (configDir: string, cacheDir = join(root, "cli-cache")): NodeJS.ProcessEnv => ({
    RBEE_CONFIG_DIR: configDir,
    RBEE_CACHE_DIR: cacheDir,
    RBEE_CLUSTER_TOKEN: clusterToken,
    RBEE_API_KEY: "",
    RBEE_LOG_LEVEL: "warn",
  });
  const cli = (args: string[], configDir = join(root, "user-config"), timeoutMs = 120_000) =>
    runRbee(args, { env: { ...base(configDir), RBEE_QUEEN_URL: queenUrl, RBEE_CATALOG_URLS: catalogUrl }, timeoutMs });
  const ok = async (args: string[], configDir?: string) => {
    const r = await cli(args, configDir);
    if (r.code !== 0) throw new Error(`rbee ${args.join(" ")} exited ${r.code}:\n${r.stderr}\n${r.stdout}`);
    return r.stdout;
  };
  /** A copy of the echo package at a version (or with another program), published by the publisher. */
  const publishVersion = async (version: string, entrySource?: string, extra: Record<string, unknown> = {}) => {
    const dir = writeEchoPackage(
      join(root, `pkg-${version}-${Math.random().toString(36).slice(2)}`),
      { version, ...extra },
      entrySource,
    );
    return ok(["worker", "publish", dir, "--token", publisherToken, "--catalog", catalogUrl], publisherCfg);
  };
  const packageOn = async (hive: string, id = "echo-package") => {
    const r = await getJson(`${queenUrl}/v1/worker-types`);
    const h = r.body.hives.find((x: { hive_id: string }) => x.hive_id === hive);
    return h?.worker_types.find((t: { id: string }) => t.id === id) as
      | { version: string; status: string; package?: Record<string, unknown> }
      | undefined;
  };
  /** The ids of the workers serving a model (not stopped or failed). */
  const serving = async (model: string) => {
    const ws = (await getJson(`${queenUrl}/v1/cluster`)).body.workers as Array<{
      worker_id: string;
      model: string;
      status: string;
    }>;
    return ws
      .filter((w) => w.model === model && !["Stopped", "Stopping", "Failed"].includes(w.status))
      .map((w) => w.worker_id);
  };
  const chat = (model: string, content: string, max_tokens = 2) =>
    postJson(`${queenUrl}/v1/chat/completions`, { model, messages: [{ role: "user", content }], max_tokens });

  const hiveProcs = new Map<string, ChildHandle>();
  /** A hive in its own process, with its own config (trusted keys) and cache (installed packages). */
  const startHive = (id: string) => {
    const hive = startRbee(["hive", "start", "--foreground", "--port", "0", "--hive-id", id], {
      env: {
        ...base(join(root, `${id}-config`), join(root, `${id}-cache`)),
        RBEE_QUEEN_URL: queenUrl,
        RBEE_HEARTBEAT_INTERVAL_MS: "1000",
        RBEE_WORKER_PORT_START: String(20_000 + Math.floor(Math.random() * 30_000)),
        RBEE_DEVICES: "[]",
      },
    });
    children.push(hive);
    hiveProcs.set(id, hive);
  };

  beforeAll(async () => {
    // the publisher's key and accounts, the catalog server
    publisherKey = (await ok(["catalog", "keygen"], publisherCfg)).trim();
    await ok(["catalog", "keygen"], strangerCfg);
    expect(publisherKey).toMatch(/^ed25519:[A-Za-z0-9+/]{43}=$/);
    publisherToken = (
      await ok(["catalog", "account", "add", "rbee-team", "--publisher", "--data-dir", dataDir])
    ).trim();
    strangerToken = (await ok(["catalog", "account", "add", "stranger", "--publisher", "--data-dir", dataDir])).trim();
    const catalog = startRbee(["catalog", "serve", "--port", "0", "--data-dir", dataDir, "--download-rate", "131072"], {
      env: base(join(root, "catalog-config")),
    });
    children.push(catalog);
    catalogUrl = (await catalog.waitForLine(/catalog server listening on (http:\/\/\S+)/))[1] as string;

    // a queen and two hives, each hive trusting the publisher's key in its own config
    const queenPort = await freePort();
    queenUrl = `http://127.0.0.1:${queenPort}`;
    const queen = startRbee(["queen", "start", "--foreground", "--port", String(queenPort)], {
      env: {
        ...base(join(root, "queen-config"), join(root, "queen-cache")),
        RBEE_HEARTBEAT_INTERVAL_MS: "1000",
        // packages installed with --auto-update are checked every 2 s (the last test)
        RBEE_PACKAGE_UPDATE_INTERVAL_MS: "2000",
      },
    });
    children.push(queen);
    await waitFor(
      async () => ((await getJson(`${queenUrl}/health`).catch(() => undefined))?.status === 200 ? true : undefined),
      30_000,
    );
    for (const id of hives) {
      await ok(["catalog", "trust", "rbee-team", publisherKey], join(root, `${id}-config`));
      startHive(id);
    }
    await waitFor(async () => {
      const r = await getJson(`${queenUrl}/v1/worker-types`);
      return r.body.hives?.length === 2 ? true : undefined;
    }, 60_000);
  }, 180_000);

  afterAll(async () => {
    for (const c of children.reverse()) await c.stop(10_000).catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  }, 60_000);

  it("publishes the echo worker package (signed), and refuses the same version twice", async () => {
    const out = await ok(
      ["worker", "publish", ECHO_PACKAGE_DIR, "--token", publisherToken, "--catalog", catalogUrl],
      publisherCfg,
    );
    expect(out).toMatch(/^published echo-package@1\.0\.0 \(any, \d+ bytes, sha256 [0-9a-f]{64}\)/);
    const again = await cli(
      ["worker", "publish", ECHO_PACKAGE_DIR, "--token", publisherToken, "--catalog", catalogUrl],
      publisherCfg,
    );
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/echo-package@1\.0\.0 is already published, and published versions never change/);
  });

  it("lists and searches the catalog, and describes a package with its sha256 and signer", async () => {
    const list = await ok(["worker", "available"]);
    expect(list).toMatch(/^ID\s+VERSION\s+CATEGORY\s+RATING\s+DEVICES\s+DESCRIPTION/m);
    expect(list).toMatch(/^echo-package\s+1\.0\.0\s+llm\s+-\s+cpu\s+The echo worker as an installable package/m);
    expect(await ok(["worker", "available", "--search", "word by word"])).toMatch(/^echo-package/m);
    expect(await ok(["worker", "available", "--category", "image"])).toBe("no worker package matches\n");
    const bad = await cli(["worker", "available", "--category", "video"]);
    expect(bad.code).toBe(2);
    // it asks the catalogs itself (docs/worker-catalog.md), neither a hive nor the queen: the same
    // list with no queen to reach
    const noQueen = await runRbee(["worker", "available"], {
      env: { ...base(join(root, "user-config")), RBEE_QUEEN_URL: "http://127.0.0.1:1", RBEE_CATALOG_URLS: catalogUrl },
      timeoutMs: 60_000,
    });
    expect(noQueen.code, noQueen.stderr).toBe(0);
    expect(noQueen.stdout).toBe(list);
    const info = await ok(["worker", "info", "echo-package"]);
    expect(info).toMatch(/^install\s+rbee worker install echo-package$/m);
    expect(info).toMatch(
      new RegExp(`^1\\.0\\.0\\s+any\\s+\\d+\\s+[0-9a-f]{64}\\s+${publisherKey.replace(/[+/]/g, "\\$&")}$`, "m"),
    );
  });

  it("installs it on both hives through the queen; it shows in `rbee worker types`; a worker of it answers through the queen", async () => {
    const out = await ok(["worker", "install", "echo-package", "--all-hives"]);
    expect(out).toMatch(/^echo-package@1\.0\.0 installed on hive-a \(signature verified\)$/m);
    expect(out).toMatch(/^echo-package@1\.0\.0 installed on hive-b \(signature verified\)$/m);
    for (const h of hives)
      expect(await packageOn(h)).toMatchObject({
        version: "1.0.0",
        status: "Available",
        package: { trust: "verified" },
      });
    const types = await ok(["worker", "types"]);
    expect(types).toMatch(/^echo-package\s+hive-a\s+available\s+cpu/m);
    expect(types).toMatch(/^echo-package\s+hive-b\s+available\s+cpu/m);

    for (const hive of hives) {
      const job = await runJob(queenUrl, {
        type: "spawn_worker",
        model: `parrot-${hive}`,
        worker_type: "echo-package",
        hive,
      });
      expect(job.error?.message).toBeUndefined();
      expect(job.result.worker).toMatchObject({ worker_type: "echo-package", hive_id: hive });
      const r = await chat(`parrot-${hive}`, "hello there world");
      expect(r.status, r.text).toBe(200);
      expect(r.body.choices[0].message.content).toBe("hello there");
    }
    const infer = await cli([
      "infer",
      "--type",
      "echo-package",
      "-m",
      "parrot-hive-a",
      "-p",
      "the quick brown fox",
      "--max-tokens",
      "3",
    ]);
    expect(infer.stdout.trim()).toBe("the quick brown");
  });

  it("refuses a tampered artifact (sha256), a forged signature, and an untrusted signer; the installed version keeps working", async () => {
    await publishVersion("1.1.0");
    const db = new Database(join(dataDir, "catalog.sqlite"));
    const row = db
      .prepare("SELECT sha256, signature FROM artifacts WHERE worker_id = 'echo-package' AND version = '1.1.0'")
      .get() as {
      sha256: string;
      signature: string;
    };
    const blob = join(dataDir, "blobs", row.sha256.slice(0, 2), row.sha256);
    const original = readFileSync(blob);
    const tampered = Buffer.from(original);
    tampered.write("X", 600); // inside the first file's bytes
    writeFileSync(blob, tampered);
    const sha = await cli(["worker", "install", "echo-package@1.1.0", "--hive", "hive-a"]);
    expect(sha.code).not.toBe(0);
    expect(sha.stderr).toMatch(
      /sha256 check failed: the package downloaded from .* has sha256 [0-9a-f]{64}, the catalog says [0-9a-f]{64}/,
    );
    expect((await packageOn("hive-a"))?.version).toBe("1.0.0");

    // a catalog that lies about the sha256 as well: the signature no longer matches
    const { createHash } = await import("node:crypto");
    db.prepare("UPDATE artifacts SET sha256 = ? WHERE worker_id = 'echo-package' AND version = '1.1.0'").run(
      createHash("sha256").update(tampered).digest("hex"),
    );
    const forged = await cli(["worker", "install", "echo-package@1.1.0", "--hive", "hive-a"]);
    expect(forged.code).not.toBe(0);
    expect(forged.stderr).toMatch(
      /signature check failed: the signature of echo-package@1\.1\.0 does not match its bytes/,
    );
    db.prepare("UPDATE artifacts SET sha256 = ? WHERE worker_id = 'echo-package' AND version = '1.1.0'").run(
      row.sha256,
    );
    writeFileSync(blob, original);
    db.close();
    expect((await packageOn("hive-a"))?.version).toBe("1.0.0");
    expect((await chat("parrot-hive-a", "still here")).body.choices[0].message.content).toBe("still here");

    // a package signed by a publisher the hives do not trust: refused unless allowed for that package
    const dir = writeEchoPackage(join(root, "stranger-pkg"), { id: "stranger-echo", version: "0.1.0" });
    await ok(["worker", "publish", dir, "--token", strangerToken, "--catalog", catalogUrl], strangerCfg);
    const untrusted = await cli(["worker", "install", "stranger-echo", "--hive", "hive-b"]);
    expect(untrusted.code).not.toBe(0);
    expect(untrusted.stderr).toMatch(
      /trust check failed: stranger-echo@0\.1\.0 is signed by key ed25519:\S+ \(fingerprint [0-9a-f]{16}\), which this hive does not trust/,
    );
    expect(await packageOn("hive-b", "stranger-echo")).toBeUndefined();
    const allowed = await ok(["worker", "install", "stranger-echo", "--hive", "hive-b", "--allow-unsigned"]);
    expect(allowed).toMatch(/stranger-echo@0\.1\.0 installed on hive-b \(unsigned, allowed\)/);
    expect((await packageOn("hive-b", "stranger-echo"))?.package).toMatchObject({ trust: "allowed-unsigned" });
  });

  it("an interrupted download resumes where it stopped", async () => {
    // 1.2.0 carries 1 MiB more; the catalog serves 128 KiB/s, so the download takes seconds
    const dir = writeEchoPackage(join(root, "pkg-big"), { version: "1.2.0" });
    writeFileSync(join(dir, "padding.bin"), randomBytes(1024 * 1024));
    await ok(["worker", "publish", dir, "--token", publisherToken, "--catalog", catalogUrl], publisherCfg);
    const created = await postJson(`${queenUrl}/v1/jobs`, {
      operation: {
        type: "install_worker_package",
        id: "echo-package",
        version: "1.2.0",
        hive: "hive-a",
        catalogs: [catalogUrl],
      },
    });
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
    expect((await packageOn("hive-a"))?.version).toBe("1.0.0");
    const again = await runJob(queenUrl, {
      type: "install_worker_package",
      id: "echo-package",
      version: "1.2.0",
      hive: "hive-a",
      catalogs: [catalogUrl],
    });
    expect(again.error?.message).toBeUndefined();
    const said = again.events.filter((e) => e.type === "narration").map((e) => String(e.message));
    const resumed = said.find((m) => /resumed the download of echo-package@1\.2\.0 at byte \d+/.test(m));
    expect(resumed, said.join("\n")).toBeDefined();
    expect(Number(/at byte (\d+)/.exec(resumed ?? "")?.[1])).toBeGreaterThan(300_000);
    expect((await packageOn("hive-a"))?.version).toBe("1.2.0");
  });

  it("an update that fails its readiness check is rolled back and the running worker keeps serving; a good one drains and replaces it", async () => {
    await publishVersion("1.3.0", "process.exit(3);\n", { ready_timeout_ms: 20_000 });
    // the worker the install test started on hive-b
    const [oldWorker, ...others] = await serving("parrot-hive-b");
    expect(others).toEqual([]);
    const failed = await cli(["worker", "update", "echo-package", "--hive", "hive-b"]);
    expect(failed.code).not.toBe(0);
    expect(failed.stderr).toMatch(
      /update of echo-package to 1\.3\.0 failed its readiness check and was rolled back to 1\.0\.0/,
    );
    expect(await packageOn("hive-b")).toMatchObject({ version: "1.0.0", status: "Available" });
    const still = await chat("parrot-hive-b", "still serving");
    expect(still.body.choices[0].message.content).toBe("still serving");
    // the failed replacement may show as Starting until hive-b's next heartbeat says it is gone
    await waitFor(async () => ((await serving("parrot-hive-b")).join() === oldWorker ? true : undefined), 15_000);

    await publishVersion("1.4.0");
    // a new major is left alone without --major
    await publishVersion("2.0.0");
    const updated = await ok(["worker", "update", "echo-package", "--hive", "hive-b"]);
    expect(updated).toMatch(/^echo-package on hive-b: 1\.0\.0 -> 1\.4\.0$/m);
    expect((await packageOn("hive-b"))?.version).toBe("1.4.0");
    await waitFor(async () => {
      const now = await serving("parrot-hive-b");
      return now.length === 1 && now[0] !== oldWorker ? true : undefined;
    }, 30_000);
    expect((await chat("parrot-hive-b", "new version here")).body.choices[0].message.content).toBe("new version");
  });

  it("uninstall removes a package no worker runs, and is refused while workers of the type run", async () => {
    const removed = await cli(["worker", "uninstall", "stranger-echo", "--hive", "hive-b"]);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toBe("stranger-echo@0.1.0 removed from hive-b\n");
    expect(await packageOn("hive-b", "stranger-echo")).toBeUndefined();
    const busy = await cli(["worker", "uninstall", "echo-package", "--hive", "hive-a"]);
    expect(busy.code).not.toBe(0);
    expect(busy.stderr).toMatch(/echo-package has running workers on this hive .*stop them first/);
    expect((await packageOn("hive-a"))?.version).toBe("1.2.0");
  });

  it("auto-update (opt-in) moves a package to the newest version within its major, replacing its running worker", async () => {
    // hive-a has 1.2.0 and a worker of it; the catalog has 1.3.0 (does not start), 1.4.0 and 2.0.0
    const [oldWorker] = await serving("parrot-hive-a");
    const out = await ok(["worker", "install", "echo-package@1.2.0", "--hive", "hive-a", "--auto-update"]);
    expect(out).toMatch(/echo-package@1\.2\.0 already installed on hive-a/);
    await waitFor(async () => ((await packageOn("hive-a"))?.version === "1.4.0" ? true : undefined), 120_000);
    expect((await packageOn("hive-a"))?.package).toMatchObject({ auto_update: true, previous_version: "1.2.0" });
    await waitFor(async () => {
      const now = await serving("parrot-hive-a");
      return now.length === 1 && now[0] !== oldWorker ? true : undefined;
    }, 30_000);
    expect((await chat("parrot-hive-a", "updated by itself")).body.choices[0].message.content).toBe("updated by");
    // hive-b did not opt in: it stays where `rbee worker update` put it
    expect((await packageOn("hive-b"))?.version).toBe("1.4.0");
  });

  it("a restarted hive still has its installed packages and spawns them", async () => {
    const startedAt = async () =>
      (
        (await getJson(`${queenUrl}/v1/cluster`)).body.hives as Array<{ id: string; state: string; started_at: string }>
      ).find((h) => h.id === "hive-b" && h.state === "live")?.started_at;
    const before = await startedAt();
    expect(before).toBeDefined();
    await hiveProcs.get("hive-b")?.stop(15_000);
    startHive("hive-b");
    await waitFor(async () => {
      const now = await startedAt();
      return now !== undefined && now !== before ? true : undefined;
    }, 60_000);
    await waitFor(async () => ((await packageOn("hive-b"))?.version === "1.4.0" ? true : undefined), 60_000);
    const job = await runJob(queenUrl, {
      type: "spawn_worker",
      model: "parrot-again",
      worker_type: "echo-package",
      hive: "hive-b",
    });
    expect(job.error?.message).toBeUndefined();
    expect((await chat("parrot-again", "back after a restart")).body.choices[0].message.content).toBe("back after");
  });
});
