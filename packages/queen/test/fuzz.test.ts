import { randomInt } from "node:crypto";
import { PROTOCOL_VERSION } from "@rbee/contract";
import { type Hive, hiveRoutes, startHive } from "@rbee/hive";
import { type Queen, startQueen } from "@rbee/queen";
import { isPidAlive } from "@rbee/server-kit";
import {
  type FuzzBody,
  type FuzzReply,
  fuzzRequest,
  getJson,
  HOSTILE_IDS,
  postJson,
  quietLog,
  Rng,
  randomBody,
  randomJson,
  rawExchange,
  requireStoriesModel,
  tempRbeeDirs,
  waitFor,
} from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * Issue 15, the fuzz suite: generated bad input to every HTTP surface of a real queen, a real hive
 * and a real llm worker (the OpenAI routes, jobs, cluster and events, the hive's routes, the worker
 * contract, both heartbeat endpoints), with no credential, a wrong one and the right ones: wrong
 * types, deep and huge bodies, invalid UTF-8, path traversal in ids and file names, unknown routes
 * and methods. No answer may be a 5xx, hang, or come from a guarded route without its credential,
 * and every daemon must still be up at the end.
 *
 * Seeded and bounded: RBEE_FUZZ_SEED reproduces a run (the seed is printed), RBEE_FUZZ_COUNT sets the
 * requests per daemon (default 150). Loopback only: the hive's Hugging Face endpoint is a closed
 * port, so no generated model reference leaves the machine.
 */
/**
 * A new seed every run on a developer's machine (to find what no run found yet); under CI a fixed one,
 * so that a submission is judged on the same requests as the run before it (this seed found HEAD on
 * streams hanging). A failing seed is printed: fix what it found and keep a test for it.
 */
const CI_SEED = 1606418393;
const SEED = process.env.RBEE_FUZZ_SEED
  ? Number(process.env.RBEE_FUZZ_SEED)
  : /^(1|true|yes)$/i.test(process.env.CI ?? "")
    ? CI_SEED
    : randomInt(2 ** 31);
const COUNT = Number(process.env.RBEE_FUZZ_COUNT ?? 150);
/** Generous: a body the worker accepts generates until its context is full (2,048 tokens). */
const TIMEOUT_MS = 45_000;
const ODD_METHODS = ["PUT", "PATCH", "OPTIONS", "TRACE", "FOO", "HEAD", "CONNECT"];
const WORKER_ROUTES = [
  { method: "GET", pattern: "/health" },
  { method: "GET", pattern: "/info" },
  { method: "GET", pattern: "/metrics" },
  { method: "POST", pattern: "/v1/infer" },
  { method: "POST", pattern: "/v1/embed" },
  { method: "POST", pattern: "/v1/shutdown" },
];

/**
 * Bodies each route would take, which the fuzzer mutates one field at a time so that it reaches past
 * the first validation. None would spawn a worker or adopt one (the worker heartbeat says Stopped).
 */
function templates(): Record<string, Record<string, unknown>> {
  const hb = {
    protocol_version: PROTOCOL_VERSION,
    worker_id: "fuzz-ghost",
    status: "Stopped",
    model: "m",
    device: "cpu",
    vram_used: 0,
    vram_total: 0,
    requests_total: 0,
    tokens_generated: 0,
    uptime_seconds: 1,
    last_request_at: null,
  };
  return {
    "POST /v1/chat/completions": {
      model: "stories260k",
      messages: [{ role: "user", content: "Once" }],
      max_tokens: 2,
    },
    "POST /v1/completions": { model: "stories260k", prompt: "Once", max_tokens: 2 },
    "POST /v1/embeddings": { model: "stories260k", input: ["a", "b"] },
    "POST /v1/jobs": { operation: { type: "infer", model: "stories260k", prompt: "Once", max_tokens: 2 } },
    "POST /v1/keys": { name: "fuzz" },
    "POST /v1/worker-heartbeat": hb,
    "POST /v1/hive-heartbeat": {
      protocol_version: PROTOCOL_VERSION,
      hive_id: "fuzz-ghost-hive",
      url: "http://127.0.0.1:1",
      version: "0",
      started_at: new Date().toISOString(),
      interval_ms: 500,
      devices: [],
      workers: [],
      models: [],
    },
    "POST /v1/workers": { model: "no-such-model", device: "cpu" },
    "POST /v1/models": { ref: "no-such-model" },
    "POST /v1/models/inspect": { ref: "no-such-model", ctx_size: 64 },
    "POST /v1/infer": { prompt: "Once", max_tokens: 2 },
    "POST /v1/embed": { input: "Once" },
  };
}

/** A template with one field changed to a random value, removed, or joined by an unknown one. */
function mutate(rng: Rng, template: Record<string, unknown>): FuzzBody {
  const body: Record<string, unknown> = structuredClone(template);
  const keys = Object.keys(body);
  const key = rng.pick(keys);
  const how = rng.int(4);
  if (how === 0) delete body[key];
  else if (how === 1) body[`unknown_${rng.int(100)}`] = randomJson(rng, 2);
  else if (how === 2 && typeof body[key] === "object" && body[key] !== null && !Array.isArray(body[key])) {
    const inner = body[key] as Record<string, unknown>;
    inner[rng.pick(Object.keys(inner))] = randomJson(rng, 2);
  } else body[key] = randomJson(rng, 2);
  return {
    what: `the template with ${key} changed`,
    body: Buffer.from(JSON.stringify(body)),
    contentType: "application/json",
  };
}

interface Target {
  name: string;
  url: () => string;
  routes: () => ReadonlyArray<{ method: string; pattern: string }>;
  /** Routes open to anyone. */
  open: (method: string, pattern: string) => boolean;
  /** Credentials it accepts (on some routes each). */
  tokens: () => string[];
  /** Requests the fuzzer must not send with valid credentials (they would end the run's daemons). */
  spare: (method: string, pattern: string) => boolean;
}

describe(`fuzz: every HTTP surface of a queen, a hive and a worker (seed ${SEED}, ${COUNT} requests each)`, () => {
  const dirs = tempRbeeDirs("fuzz");
  let queen: Queen;
  let hive: Hive;
  let apiKey: string;
  let workerUrl: string;
  let workerPid: number;

  beforeAll(async () => {
    console.log(`fuzz seed ${SEED} (RBEE_FUZZ_SEED=${SEED} reproduces this run), ${COUNT} requests per daemon`);
    queen = await startQueen({
      log: quietLog("queen"),
      port: 0,
      configDir: dirs.configDir,
      cacheDir: dirs.cacheDir,
      heartbeatIntervalMs: 500,
    });
    apiKey = queen.keys.create("fuzz").key;
    hive = await startHive({
      log: quietLog("hive"),
      port: 0,
      queenUrl: queen.url,
      hiveId: "fuzz-hive",
      configDir: dirs.configDir,
      cacheDir: dirs.cacheDir,
      heartbeatIntervalMs: 500,
      workerPortStart: 20_000 + Math.floor(Math.random() * 30_000),
      env: { ...process.env, RBEE_DEVICES: "[]", HF_ENDPOINT: "http://127.0.0.1:1", HF_TOKEN: "" },
    });
    const model = await postJson(`${hive.url}/v1/models`, { ref: requireStoriesModel() }, { token: hive.token });
    expect(model.status, model.text).toBe(200);
    const spawned = await postJson(
      `${hive.url}/v1/workers`,
      { model: model.body.id, worker_id: "llm-fuzz", parallel: 2 },
      { token: hive.token },
    );
    expect(spawned.status, spawned.text).toBe(201);
    workerUrl = spawned.body.url;
    workerPid = spawned.body.pid;
    await waitFor(() => (queen.registry.workers.get("llm-fuzz")?.report.status === "Ready" ? true : undefined), 30_000);
  }, 120_000);

  afterAll(async () => {
    await hive?.close();
    await queen?.close();
  });

  const targets: Target[] = [
    {
      name: "queen",
      url: () => queen.url,
      routes: () => queen.routes(),
      open: (method, pattern) => method === "GET" && (pattern === "/health" || pattern === "/"),
      tokens: () => [apiKey, queen.clusterToken],
      spare: () => false,
    },
    {
      name: "hive",
      url: () => hive.url,
      routes: () => hiveRoutes(hive).routes(),
      open: (method, pattern) => method === "GET" && pattern === "/health",
      tokens: () => [hive.token],
      // the run's own worker stays
      spare: (method, pattern) => method === "DELETE" && pattern === "/v1/workers/:id",
    },
    {
      name: "worker",
      url: () => workerUrl,
      routes: () => WORKER_ROUTES,
      open: (method, pattern) => method === "GET" && pattern === "/health",
      tokens: () => [hive.token],
      spare: (method, pattern) => method === "POST" && pattern === "/v1/shutdown",
    },
  ];

  for (const target of targets) {
    it(`${target.name}: no 5xx, no hang, no guarded route answers without its credential`, async () => {
      const rng = new Rng(SEED ^ target.name.length);
      const failures: string[] = [];
      const routes = target.routes();
      for (let i = 0; i < COUNT; i++) {
        const unknown = rng.chance(0.1);
        const route = unknown
          ? {
              method: rng.pick(["GET", "POST", "DELETE"]),
              pattern: `/${rng.pick(["v1", "api", "v2", ".."])}/${rng.pick(HOSTILE_IDS)}`,
            }
          : rng.pick(routes);
        const method = rng.chance(0.1) ? rng.pick(ODD_METHODS) : route.method;
        const path = route.pattern.replace(/:[a-z]+/g, () =>
          rng.chance(0.7) ? rng.pick(HOSTILE_IDS) : `id${rng.int(1000)}`,
        );
        const query = rng.chance(0.2)
          ? `?${rng.pick(["tail=-1", "tail=99999999", "after=abc", "refresh=%ff", "a=%00"])}`
          : "";
        const mode = rng.pick(["none", "wrong", "valid"] as const);
        const token = mode === "none" ? undefined : mode === "wrong" ? "rbee_sk_not-a-key" : rng.pick(target.tokens());
        if (mode === "valid" && target.spare(method, route.pattern)) continue;
        const template = templates()[`${method} ${route.pattern}`];
        const body: FuzzBody =
          template !== undefined && rng.chance(0.5)
            ? mutate(rng, template)
            : method === "GET" && rng.chance(0.8)
              ? { what: "no body", body: undefined, contentType: undefined }
              : randomBody(rng);
        const what = `#${i} ${mode} ${method} ${path}${query} with ${body.what}`;
        const reply: FuzzReply = await fuzzRequest(`${target.url()}${path}${query}`, {
          method,
          body: body.body,
          contentType: body.contentType,
          token,
          timeoutMs: TIMEOUT_MS,
        });
        if (reply.hung) failures.push(`${what}: no answer within ${TIMEOUT_MS} ms`);
        else if (reply.status >= 500) failures.push(`${what}: ${reply.status} ${reply.text.slice(0, 300)}`);
        else if (reply.status === 0 && !/EPIPE|ECONNRESET|socket hang up/.test(reply.error ?? ""))
          failures.push(`${what}: ${reply.error}`);
        const guarded = !unknown && method === route.method && !target.open(route.method, route.pattern);
        if (mode !== "valid" && guarded && reply.status > 0 && reply.status < 400)
          failures.push(`${what}: answered ${reply.status} without a valid credential`);
        if (mode !== "valid" && guarded && reply.status > 0 && ![401, 404, 405, 413].includes(reply.status))
          failures.push(`${what}: ${reply.status} without a valid credential, expected 401`);
      }
      expect(failures, `seed ${SEED}: ${failures.length} failures`).toEqual([]);

      // nothing crashed: every daemon answers, the worker is the same process
      for (const url of [queen.url, hive.url, workerUrl]) expect((await getJson(`${url}/health`)).status).toBe(200);
      expect(isPidAlive(workerPid)).toBe(true);
    }, 600_000);
  }

  it("malformed requests on the wire (bad request lines, bytes that are not UTF-8, huge headers) get a 4xx", async () => {
    const requests = [
      Buffer.from("GARBAGE\r\n\r\n"),
      Buffer.concat([
        Buffer.from("GET /v1/models/"),
        Buffer.from([0xff, 0xfe, 0x80]),
        Buffer.from(" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
      ]),
      Buffer.concat([
        Buffer.from("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nX-Bad: "),
        Buffer.from([0xff, 0x00, 0xfe]),
        Buffer.from("\r\n\r\n"),
      ]),
      Buffer.from(
        `GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nX-Big: ${"a".repeat(100_000)}\r\n\r\n`,
      ),
      Buffer.from("POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: -5\r\n\r\n"),
      Buffer.from(
        "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nzz\r\n",
      ),
      Buffer.from("GET /../../../etc/passwd HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
    ];
    for (const url of [queen.url, hive.url, workerUrl]) {
      for (const bytes of requests) {
        const r = await rawExchange(url, bytes, 10_000);
        expect(r.hung, `${url}: ${bytes.subarray(0, 60).toString("latin1")}`).toBe(false);
        expect(r.firstLine, `${url}: ${bytes.subarray(0, 60).toString("latin1")}`).toMatch(/^HTTP\/1\.1 4\d\d /);
      }
      expect((await getJson(`${url}/health`)).status).toBe(200);
    }
  });
});
