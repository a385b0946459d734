import { JobEvent } from "@rbee/contract";
import { type Queen, startQueen } from "@rbee/queen";
import {
  getJson,
  type ParsedSse,
  postJson,
  quietLog,
  STORIES_GREEDY_PREFIX,
  type StartedWorker,
  startLlmWorker,
  tempRbeeDirs,
  waitFor,
} from "@rbee/testing";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

async function readJobStream(
  url: string,
  headers: Record<string, string> = {},
  stopAfter?: number,
): Promise<ParsedSse[]> {
  const res = await fetch(url, { headers: { accept: "text/event-stream", ...headers } });
  const { parseSse } = await import("@rbee/contract");
  const events: ParsedSse[] = [];
  for await (const m of parseSse(res.body as AsyncIterable<Uint8Array>)) {
    events.push({ event: m.event, data: JSON.parse(m.data), id: m.id });
    if (stopAfter !== undefined && events.length >= stopAfter) break;
  }
  return events;
}

describe("queen auth", () => {
  let queen: Queen;
  beforeAll(async () => {
    const dirs = tempRbeeDirs("auth");
    queen = await startQueen({ log: quietLog("queen"), port: 0, configDir: dirs.configDir, cacheDir: dirs.cacheDir });
  });
  afterAll(() => queen?.close());

  it("heartbeats without the cluster token, or with a wrong one, are refused with 401", async () => {
    const body = {
      protocol_version: 1,
      hive_id: "h",
      url: "http://127.0.0.1:1",
      version: "0",
      started_at: new Date().toISOString(),
      interval_ms: 5000,
      devices: [],
      workers: [],
      models: [],
    };
    const none = await postJson(`${queen.url}/v1/hive-heartbeat`, body);
    expect(none.status).toBe(401);
    expect(none.body.error.type).toBe("authentication_error");
    expect((await postJson(`${queen.url}/v1/hive-heartbeat`, body, { token: "wrong" })).status).toBe(401);
    expect((await postJson(`${queen.url}/v1/worker-heartbeat`, {}, { token: "wrong" })).status).toBe(401);
    expect((await postJson(`${queen.url}/v1/hive-heartbeat`, body, { token: queen.clusterToken })).status).toBe(200);
  });

  it("a heartbeat of another protocol version is refused with the fix", async () => {
    const body = {
      protocol_version: 99,
      hive_id: "h2",
      url: "http://127.0.0.1:1",
      version: "9",
      started_at: new Date().toISOString(),
      interval_ms: 5000,
      devices: [],
      workers: [],
      models: [],
    };
    const r = await postJson(`${queen.url}/v1/hive-heartbeat`, body, { token: queen.clusterToken });
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(/protocol 99.*upgrade the queen/);
  });

  it("OpenAI routes are open until a key exists, then want one (401 in OpenAI's shape)", async () => {
    expect((await getJson(`${queen.url}/v1/models`)).status).toBe(200);
    // while no key exists, the key routes are as open as the rest (the dashboard makes the first key)
    expect((await getJson(`${queen.url}/v1/keys`)).body).toEqual({ keys: [] });
    const created = await postJson(`${queen.url}/v1/keys`, { name: "ci" }, { token: queen.clusterToken });
    expect(created.status).toBe(201);
    const key: string = created.body.key;
    expect(key).toMatch(/^rbee_sk_/);
    expect(created.body.admin).toBe(false);
    // from now on they want the cluster token or an admin key: a plain key is refused with 403
    const anonymous = await getJson(`${queen.url}/v1/keys`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error.message).toMatch(/admin key or the cluster token/);
    const plain = await getJson(`${queen.url}/v1/keys`, key);
    expect(plain.status).toBe(403);
    expect(plain.body.error.message).toMatch(/cannot manage keys/);
    const missing = await getJson(`${queen.url}/v1/models`);
    expect(missing.status).toBe(401);
    expect(missing.body.error).toMatchObject({ type: "authentication_error", code: "invalid_api_key" });
    const wrong = new OpenAI({ baseURL: `${queen.url}/v1`, apiKey: "rbee_sk_wrong", maxRetries: 0 });
    expect(await wrong.models.list().catch((e: unknown) => e)).toBeInstanceOf(OpenAI.AuthenticationError);
    const right = new OpenAI({ baseURL: `${queen.url}/v1`, apiKey: key, maxRetries: 0 });
    expect((await right.models.list()).object).toBe("list");
    expect((await getJson(`${queen.url}/v1/cluster`)).status).toBe(401);
    // the cluster token is the local admin's key: the CLI on the queen's machine keeps working
    expect((await getJson(`${queen.url}/v1/cluster`, queen.clusterToken)).status).toBe(200);
    // the key list never shows secrets; removing the key opens the routes again
    const list = await getJson(`${queen.url}/v1/keys`, queen.clusterToken);
    expect(JSON.stringify(list.body)).not.toContain(key);
    const res = await fetch(`${queen.url}/v1/keys/${created.body.id}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${queen.clusterToken}` },
    });
    expect(res.status).toBe(204);
    expect((await getJson(`${queen.url}/v1/models`)).status).toBe(200);
  });

  it("the first key can be made with no token (an admin key); an admin key manages keys, a plain one is refused", async () => {
    const first = await postJson(`${queen.url}/v1/keys`, { name: "dashboard", admin: true });
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ name: "dashboard", admin: true });
    const admin: string = first.body.key;
    expect((await postJson(`${queen.url}/v1/keys`, { name: "second" })).status).toBe(401);
    const second = await postJson(`${queen.url}/v1/keys`, { name: "second" }, { token: admin });
    expect(second.status).toBe(201);
    const list = await getJson(`${queen.url}/v1/keys`, admin);
    expect(list.body.keys.map((k: { name: string; admin: boolean }) => [k.name, k.admin])).toEqual([
      ["dashboard", true],
      ["second", false],
    ]);
    const del = (id: string, token: string) =>
      fetch(`${queen.url}/v1/keys/${id}`, { method: "DELETE", headers: { authorization: `Bearer ${token}` } });
    expect((await del(first.body.id, second.body.key)).status).toBe(403);
    expect((await del(second.body.id, admin)).status).toBe(204);
    expect((await del(first.body.id, admin)).status).toBe(204);
    expect((await getJson(`${queen.url}/v1/models`)).status).toBe(200);
  });

  it("a secret matches only whole: a key or token one character off, cut short or run on is refused", async () => {
    const near = (secret: string) => [
      secret.slice(0, -1),
      `${secret}x`,
      `${secret.slice(0, -1)}${secret.endsWith("A") ? "B" : "A"}`,
      secret.toUpperCase() === secret ? secret.toLowerCase() : secret.toUpperCase(),
    ];
    const admin = await postJson(`${queen.url}/v1/keys`, { name: "near-admin", admin: true });
    expect(admin.status).toBe(201);
    const plain = await postJson(`${queen.url}/v1/keys`, { name: "near-plain" }, { token: admin.body.key });
    expect(plain.status).toBe(201);
    const heartbeat = { protocol_version: 1, hive_id: "near", url: "http://127.0.0.1:1", version: "0" };
    const beat = (token: string) =>
      postJson(
        `${queen.url}/v1/hive-heartbeat`,
        { ...heartbeat, started_at: new Date().toISOString(), interval_ms: 5000, devices: [], workers: [], models: [] },
        { token },
      );
    // the cluster token on the cluster routes (bearerAuth) and as the administrator's key
    for (const wrong of near(queen.clusterToken)) {
      expect((await beat(wrong)).status, wrong).toBe(401);
      expect((await getJson(`${queen.url}/v1/keys`, wrong)).status, wrong).toBe(401);
    }
    expect((await beat(queen.clusterToken)).status).toBe(200);
    expect((await getJson(`${queen.url}/v1/keys`, queen.clusterToken)).status).toBe(200);
    // a stored admin key on the key routes, a stored plain key on the OpenAI routes
    for (const wrong of near(admin.body.key as string)) {
      expect((await getJson(`${queen.url}/v1/keys`, wrong)).status, wrong).toBe(401);
    }
    expect((await getJson(`${queen.url}/v1/keys`, admin.body.key)).status).toBe(200);
    for (const wrong of near(plain.body.key as string)) {
      expect((await getJson(`${queen.url}/v1/models`, wrong)).status, wrong).toBe(401);
    }
    expect((await getJson(`${queen.url}/v1/models`, plain.body.key)).status).toBe(200);
    for (const id of [plain.body.id, admin.body.id]) {
      const res = await fetch(`${queen.url}/v1/keys/${id}`, {
        method: "DELETE",
        headers: { authorization: `Bearer ${queen.clusterToken}` },
      });
      expect(res.status).toBe(204);
    }
  });

  it("refuses a non-loopback bind without API keys", async () => {
    const dirs = tempRbeeDirs("bind");
    await expect(
      startQueen({
        log: quietLog("queen"),
        port: 0,
        host: "0.0.0.0",
        configDir: dirs.configDir,
        cacheDir: dirs.cacheDir,
      }),
    ).rejects.toThrow(/refusing to listen on 0\.0\.0\.0 without API keys/);
  });
});

describe("queen jobs", () => {
  let queen: Queen;
  let worker: StartedWorker;
  beforeAll(async () => {
    const dirs = tempRbeeDirs("jobs");
    queen = await startQueen({ log: quietLog("queen"), port: 0, configDir: dirs.configDir, cacheDir: dirs.cacheDir });
    worker = await startLlmWorker(["--heartbeat-url", queen.url, "--heartbeat-interval", "0.3", "--parallel", "1"], {
      env: { RBEE_CLUSTER_TOKEN: queen.clusterToken },
    });
    await waitFor(() => (queen.registry.routableWorkers("stories260K").length > 0 ? true : undefined));
  });
  afterAll(async () => {
    await worker?.child.stop();
    await queen?.close();
  });

  it("an infer job streams tokens then one done; a late client sees every event", async () => {
    const created = await postJson(`${queen.url}/v1/jobs`, {
      operation: { type: "infer", model: "stories260K", prompt: "Once upon a time", max_tokens: 12, temperature: 0 },
    });
    expect(created.status).toBe(202);
    const { job_id, sse_url } = created.body;
    const live = await readJobStream(`${queen.url}${sse_url}`);
    for (const e of live) JobEvent.parse(e.data);
    expect(live.filter((e) => ["done", "error", "cancelled"].includes(e.event))).toHaveLength(1);
    const done = live.at(-1);
    expect(done?.event).toBe("done");
    expect(done?.data.result.text.startsWith(", there was")).toBe(true);
    const text = live
      .filter((e) => e.event === "token")
      .map((e) => e.data.text)
      .join("");
    expect(text).toBe(done?.data.result.text);
    // connecting after the end replays everything
    const late = await readJobStream(`${queen.url}/v1/jobs/${job_id}/stream`);
    expect(late.map((e) => e.id)).toEqual(live.map((e) => e.id));
    // reconnecting with Last-Event-ID resumes after that event
    expect(live.length).toBeGreaterThanOrEqual(2);
    const middle = live[live.length - 2]?.id as string;
    const resumed = await readJobStream(`${queen.url}/v1/jobs/${job_id}/stream`, { "last-event-id": middle });
    expect(resumed.map((e) => e.id)).toEqual([live.at(-1)?.id]);
  });

  it("DELETE cancels a running job: its stream ends with cancelled and the worker stops generating", async () => {
    const created = await postJson(`${queen.url}/v1/jobs`, {
      operation: { type: "infer", model: "stories260K", prompt: "Once upon a time", temperature: 0 },
    });
    const { job_id, sse_url } = created.body;
    await readJobStream(`${queen.url}${sse_url}`, {}, 3); // wait until it generates
    const del = await fetch(`${queen.url}/v1/jobs/${job_id}`, { method: "DELETE" });
    expect(del.status).toBe(200);
    const events = await readJobStream(`${queen.url}${sse_url}`);
    expect(events.at(-1)?.event).toBe("cancelled");
    await waitFor(async () => {
      const m = await getJson(`${worker.url}/metrics`, queen.clusterToken);
      return /^rbee_worker_requests_total\{outcome="cancelled"\} [1-9]/m.test(m.text) ? true : undefined;
    });
    // the single slot is free again
    const next = await postJson(`${queen.url}/v1/completions`, {
      model: "stories260K",
      prompt: "Once upon a time",
      max_tokens: 5,
      temperature: 0,
    });
    expect(next.body.choices[0].text.startsWith(STORIES_GREEDY_PREFIX.slice(0, 8))).toBe(true);
  });

  it("a job for an unknown model ends with an error event naming it", async () => {
    const created = await postJson(`${queen.url}/v1/jobs`, {
      operation: { type: "infer", model: "nope", prompt: "x" },
    });
    const events = await readJobStream(`${queen.url}${created.body.sse_url}`);
    expect(events.at(-1)).toMatchObject({ event: "error", data: { code: "model_not_found" } });
  });

  it("GET /v1/jobs lists the jobs newest first, with an infer job's prompt left out", async () => {
    const created = await postJson(`${queen.url}/v1/jobs`, {
      operation: { type: "infer", model: "nope", prompt: "a secret prompt" },
    });
    await readJobStream(`${queen.url}${created.body.sse_url}`);
    const list = await getJson(`${queen.url}/v1/jobs`);
    expect(list.status).toBe(200);
    expect(list.body.jobs[0]).toMatchObject({
      job_id: created.body.job_id,
      status: "error",
      operation: { type: "infer", model: "nope", message_count: 1 },
    });
    expect(list.body.jobs[0].finished_at).toBeGreaterThanOrEqual(list.body.jobs[0].created_at);
    expect(list.body.jobs.length).toBeGreaterThan(2);
    expect(list.text).not.toContain("a secret prompt");
    expect(list.text).not.toContain("Once upon a time");
  });

  it("a malformed job is refused with 400 naming the field", async () => {
    const r = await postJson(`${queen.url}/v1/jobs`, {
      operation: { type: "infer", model: "x", prompt: "y", max_tokens: "lots" },
    });
    expect(r.status).toBe(400);
    expect(r.body.error.param).toBe("operation.max_tokens");
    const unknown = await postJson(`${queen.url}/v1/jobs`, { operation: { type: "explode" } });
    expect(unknown.status).toBe(400);
    expect((await getJson(`${queen.url}/v1/jobs/job_nope/stream`)).status).toBe(404);
  });
});
