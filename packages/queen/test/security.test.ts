import { type Hive, hiveRoutes, startHive } from "@rbee/hive";
import { type Queen, startQueen } from "@rbee/queen";
import { type ClientRequestOptions, freePort, readBody, sendRequest } from "@rbee/server-kit";
import {
  type ChildHandle,
  makeTestCertificates,
  quietLog,
  requireStoriesModel,
  runRbee,
  STORIES_GREEDY_PREFIX,
  startRbee,
  type TestCertificates,
  tempRbeeDirs,
  waitFor,
} from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

interface Reply {
  status: number;
  text: string;
  body: { error?: { message: string; code: string } } & Record<string, unknown>;
  headers: Record<string, string | string[] | undefined>;
}

/** One request as any HTTP client would send it; an error status is returned, not thrown. */
async function call(url: string, o: ClientRequestOptions = {}): Promise<Reply> {
  const res = await sendRequest(url, { timeoutMs: 30_000, headers: { accept: "application/json" }, ...o });
  const text = await readBody(res);
  let body: Reply["body"] = {};
  try {
    body = JSON.parse(text);
  } catch {}
  return { status: res.statusCode ?? 0, text, body, headers: res.headers };
}

/** A body for each POST route that would pass validation, so that only the token decides. */
function bodyFor(path: string, model: string): unknown {
  if (path === "/v1/workers") return { model };
  if (path === "/v1/models") return { ref: model };
  if (path === "/v1/models/inspect") return { ref: model };
  if (path === "/v1/infer") return { prompt: "Once upon a time", max_tokens: 4 };
  if (path === "/v1/embed") return { input: "hi" };
  return {};
}

/** Every route refuses a missing and a wrong token with 401 and a message that says what to send. */
async function expectRefused(base: string, method: string, path: string, model: string): Promise<void> {
  const where = `${method} ${path}`;
  const body = method === "POST" ? bodyFor(path, model) : undefined;
  const missing = await call(`${base}${path}`, { method, body });
  expect(missing.status, `${where} without a token: ${missing.text}`).toBe(401);
  expect(missing.body.error?.message, where).toMatch(
    /^missing cluster token: send it as 'Authorization: Bearer <cluster token>'; /,
  );
  expect(missing.headers["www-authenticate"], where).toBe('Bearer realm="rbee"');
  const wrong = await call(`${base}${path}`, { method, body, token: "rbee_ct_not-the-token" });
  expect(wrong.status, `${where} with a wrong token: ${wrong.text}`).toBe(401);
  expect(wrong.body.error?.message, where).toMatch(/^invalid cluster token; /);
}

describe("the cluster token guards every route of a real hive and a real worker (stories260K)", () => {
  const dirs = tempRbeeDirs("security");
  let queen: Queen;
  let hive: Hive;
  let workerUrl: string;
  const workerId = "llm-guarded";
  const model = requireStoriesModel();

  beforeAll(async () => {
    queen = await startQueen({
      log: quietLog("queen"),
      port: 0,
      configDir: dirs.configDir,
      cacheDir: dirs.cacheDir,
      heartbeatIntervalMs: 300,
    });
    hive = await startHive({
      log: quietLog("hive"),
      port: 0,
      queenUrl: queen.url,
      hiveId: "guarded",
      configDir: dirs.configDir,
      cacheDir: dirs.cacheDir,
      heartbeatIntervalMs: 300,
      workerPortStart: 20_000 + Math.floor(Math.random() * 30_000),
    });
    const registered = await call(`${hive.url}/v1/models`, { body: { ref: model }, token: hive.token });
    expect(registered.status, registered.text).toBe(200);
    const spawned = await call(`${hive.url}/v1/workers`, {
      body: { model: registered.body.id, worker_id: workerId },
      token: hive.token,
    });
    expect(spawned.status, spawned.text).toBe(201);
    workerUrl = spawned.body.url as string;
    // the hive's heartbeats reached the queen with the token, the worker's the hive
    await waitFor(() => (queen.registry.workers.get(workerId)?.report.status === "Ready" ? true : undefined), 20_000);
  }, 120_000);

  afterAll(async () => {
    await hive?.close();
    await queen?.close();
  });

  it("the hive: every route but GET /health answers 401 without the token and with a wrong one", async () => {
    const routes = hiveRoutes(hive).routes();
    expect(routes.length).toBeGreaterThan(10);
    for (const r of routes) {
      const path = r.pattern.replace(":id", workerId);
      if (r.method === "GET" && path === "/health") continue;
      await expectRefused(hive.url, r.method, path, model);
    }
    const health = await call(`${hive.url}/health`);
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ status: "Ready", hive_id: "guarded" });
    // nothing was done: the worker still runs, the model is still there
    const workers = await call(`${hive.url}/v1/workers`, { token: hive.token });
    expect(workers.body.workers).toMatchObject([{ worker_id: workerId, status: "Ready" }]);
  });

  it("the worker the hive spawned: every route but GET /health answers 401 without the token", async () => {
    const routes = [
      ["GET", "/info"],
      ["GET", "/metrics"],
      ["POST", "/v1/infer"],
      ["POST", "/v1/embed"],
      ["POST", "/v1/shutdown"],
    ];
    for (const [method, path] of routes) await expectRefused(workerUrl, method as string, path as string, model);
    expect((await call(`${workerUrl}/health`)).status).toBe(200);
    // with the token it serves (and /v1/shutdown above did not stop it)
    const infer = await call(`${workerUrl}/v1/infer`, {
      body: { prompt: "Once upon a time", max_tokens: 12, temperature: 0 },
      token: hive.token,
    });
    expect(infer.status, infer.text).toBe(200);
    expect(String(infer.body.text)).toContain(STORIES_GREEDY_PREFIX.slice(0, 20));
  });

  // (the key routes, open like every route while no key exists, are tested in auth-and-jobs.test.ts)
  it("the queen's heartbeat routes want the cluster token", async () => {
    const routes = [
      ["POST", "/v1/hive-heartbeat"],
      ["POST", "/v1/worker-heartbeat"],
    ];
    for (const [method, path] of routes) await expectRefused(queen.url, method as string, path as string, model);
    expect((await call(`${queen.url}/health`)).status).toBe(200);
  });

  it("a worker started by hand refuses a non-loopback address without a cluster token", async () => {
    const env = { ...dirs.env, RBEE_CLUSTER_TOKEN: "" };
    const r = await runRbee(["worker", "serve", "llm", `--model=${model}`, "--host=0.0.0.0", "--port=0"], { env });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/refusing to listen on 0\.0\.0\.0 without a cluster token/);
  });
});

describe("TLS end to end: a queen and a hive serving HTTPS, a worker spawned through the queen, on stories260K", () => {
  const dirs = tempRbeeDirs("tls");
  let certs: TestCertificates;
  let queenUrl: string;
  const children: ChildHandle[] = [];
  /** The environment of every process here: no TLS settings inherited from the test's own. */
  const baseEnv = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
    ...dirs.env,
    RBEE_TLS_CERT: "",
    RBEE_TLS_KEY: "",
    RBEE_TLS_CA: "",
    RBEE_HEARTBEAT_INTERVAL_MS: "500",
    ...extra,
  });

  beforeAll(async () => {
    certs = makeTestCertificates();
    const tlsFlags = ["--tls-cert", certs.certFile, "--tls-key", certs.keyFile];
    const queenPort = await freePort();
    queenUrl = `https://127.0.0.1:${queenPort}`;
    // the queen calls hives and workers over HTTPS: it trusts the CA through RBEE_TLS_CA
    const queen = startRbee(["queen", "start", "--foreground", "--port", String(queenPort), ...tlsFlags], {
      env: baseEnv({ RBEE_TLS_CA: certs.caFile }),
    });
    children.push(queen);
    await queen.waitForLine(/"msg":"queen ready"/, 30_000);
    const hive = startRbee(
      ["--queen-url", queenUrl, "hive", "start", "--foreground", "--port", "0", "--hive-id", "tls-hive", ...tlsFlags],
      { env: baseEnv({ RBEE_TLS_CA: certs.caFile }) },
    );
    children.push(hive);
    await hive.waitForLine(/"msg":"hive ready"/, 30_000);
  }, 90_000);

  afterAll(async () => {
    for (const c of children.reverse()) await c.stop(20_000);
  });

  it("the hive joins over https, a worker is placed through the queen, and a completion comes back through https", async () => {
    const cluster = await waitFor(
      async () => {
        const c = await call(`${queenUrl}/v1/cluster`, { ca: certs.ca });
        const hives = c.body.hives as Array<{ id: string; state: string; url: string }>;
        return hives.some((h) => h.id === "tls-hive" && h.state === "live") ? c.body : undefined;
      },
      30_000,
      "the hive's first heartbeat over https",
    );
    const hiveUrl = (cluster.hives as Array<{ url: string }>)[0]?.url ?? "";
    expect(hiveUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);

    // the CLI talks to the queen over https, trusting the CA through RBEE_TLS_CA
    const model = requireStoriesModel();
    const infer = await runRbee(
      [
        "--queen-url",
        queenUrl,
        "infer",
        "-m",
        model,
        "-p",
        "Once upon a time",
        "--temperature",
        "0",
        "--max-tokens",
        "12",
      ],
      { env: baseEnv({ RBEE_TLS_CA: certs.caFile }), timeoutMs: 120_000 },
    );
    expect(infer.code, infer.stderr).toBe(0);
    expect(infer.stdout).toContain(STORIES_GREEDY_PREFIX.slice(0, 20));

    // an OpenAI completion through https, routed by the queen to the worker over https
    const completion = await call(`${queenUrl}/v1/completions`, {
      body: { model: "stories260k", prompt: "Once upon a time", max_tokens: 12, temperature: 0 },
      ca: certs.ca,
    });
    expect(completion.status, completion.text).toBe(200);
    const choices = completion.body.choices as Array<{ text: string }>;
    expect(choices[0]?.text).toContain(STORIES_GREEDY_PREFIX.slice(0, 20));

    // the worker serves HTTPS with the hive's certificate, and says so in its URL
    const workers = (await call(`${queenUrl}/v1/workers`, { ca: certs.ca })).body.workers as Array<{ url: string }>;
    expect(workers).toHaveLength(1);
    const workerUrl = workers[0]?.url ?? "";
    expect(workerUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect((await call(`${workerUrl}/health`, { ca: certs.ca })).status).toBe(200);
    const plainWorker = await call(`${workerUrl.replace("https:", "http:")}/health`);
    expect(plainWorker.status).toBe(400);
    expect(plainWorker.body.error?.code).toBe("https_required");
  }, 180_000);

  it("a client without the CA gets an error that says to set RBEE_TLS_CA", async () => {
    const r = await runRbee(["--queen-url", queenUrl, "status"], { env: baseEnv() });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`the queen at ${queenUrl}`);
    expect(r.stderr).toMatch(/presented a certificate this client does not trust \(.*\): .*set RBEE_TLS_CA/);
  });

  it("plain HTTP to the queen's TLS port gets a 400 that says to use https://", async () => {
    const plain = await call(`${queenUrl.replace("https:", "http:")}/health`);
    expect(plain.status).toBe(400);
    expect(plain.body.error?.message).toMatch(/^this port speaks HTTPS only: use https:\/\//);
  });
});
