import { createHash } from "node:crypto";
import { readdir, readFile, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseSse } from "@rbee/contract";
import {
  cachedGeneratedModel,
  type HubServer,
  postJson,
  STORIES_GREEDY_PREFIX,
  STORIES_MODEL,
  STORIES_SHA256,
  startHubServer,
  waitFor,
} from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GateProxy } from "./helpers/gate-proxy.js";
import { copyStoriesModel, startTestHive, type TestHive } from "./helpers/test-hive.js";

const MiB = 1024 * 1024;
const TOKEN = "rbee_ct_lan-share-test-token";

interface Event {
  event: string;
  data: any;
}

/** POST /v1/models as the queen does: SSE, with the cluster token; `stop` may end it early (a client that goes away). */
async function provision(
  hiveUrl: string,
  body: { ref: string; peers?: Array<{ hive_id: string; url: string }> },
  stop?: (e: Event) => boolean,
): Promise<{ status: number; events: Event[]; last: Event | undefined }> {
  const abort = new AbortController();
  const res = await fetch(`${hiveUrl}/v1/models`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "text/event-stream", authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify(body),
    signal: abort.signal,
  });
  const events: Event[] = [];
  if (!res.ok || !res.body)
    return { status: res.status, events, last: { event: "http_error", data: await res.text() } };
  try {
    for await (const msg of parseSse(res.body as AsyncIterable<Uint8Array>)) {
      const e = { event: msg.event, data: JSON.parse(msg.data) };
      events.push(e);
      if (stop?.(e)) {
        abort.abort();
        break;
      }
    }
  } catch (err) {
    if (!abort.signal.aborted) throw err;
  }
  return { status: res.status, events, last: events.at(-1) };
}

const narration = (events: Event[]) => events.filter((e) => e.event === "narration").map((e) => e.data.message);

async function sha256(path: string): Promise<string> {
  return createHash("sha256")
    .update(await readFile(path))
    .digest("hex");
}

function lanHive(hiveId: string, env: NodeJS.ProcessEnv = {}): Promise<TestHive> {
  return startTestHive({ hiveId, env: { RBEE_DEVICES: "[]", RBEE_CLUSTER_TOKEN: TOKEN, ...env } });
}

async function catalogIds(t: TestHive): Promise<string[]> {
  return (await t.api.get("/v1/models")).body.models.map((m: { id: string }) => m.id);
}

describe("model sharing on the LAN: two hives in this process, real HTTP on loopback", () => {
  let a: TestHive;
  let b: TestHive;
  const peerA = () => ({ hive_id: "hive-a", url: a.hive.url });

  beforeAll(async () => {
    [a, b] = await Promise.all([lanHive("hive-a"), lanHive("hive-b")]);
    // on A, stories260K is a local file registered in place: its catalog id is stories260k
    const reg = await a.api.post("/v1/models", { ref: STORIES_MODEL });
    expect(reg.status, reg.text).toBe(200);
    expect(reg.body.id).toBe("stories260k");
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
  });

  it("hive B fetches stories260K from hive A by its catalog id: byte-identical, sha256 checked, and a worker on B serves it", async () => {
    // without peers, B has no way to get a bare catalog id
    const alone = await provision(b.hive.url, { ref: "stories260k" });
    expect(alone.last?.data.code).toBe("model_not_found");

    const r = await provision(b.hive.url, { ref: "stories260k", peers: [peerA()] });
    expect(r.last?.event, JSON.stringify(r.events)).toBe("done");
    const said = narration(r.events);
    expect(
      said.some((m) => /fetching stories260k from hive hive-a on the LAN/.test(m)),
      said.join("\n"),
    ).toBe(true);
    expect(said.some((m) => /fetched stories260k from hive hive-a: .* sha256 checked/.test(m))).toBe(true);
    const progress = r.events.filter((e) => e.event === "progress");
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)?.data).toMatchObject({ done: (await stat(STORIES_MODEL)).size, unit: "bytes" });

    const model = r.last?.data.model;
    expect(model).toMatchObject({ id: "stories260k", status: "Available", name: "stories260K" });
    expect(model.source_url).toBe(`${a.hive.url}/v1/models/stories260k`);
    // a file of B's own cache, not A's path
    expect(model.path).toBe(join(b.cacheDir, "models/stories260k/stories260K.gguf"));
    expect(await sha256(model.path)).toBe(STORIES_SHA256);
    expect(Buffer.compare(await readFile(model.path), await readFile(STORIES_MODEL))).toBe(0);
    expect(model.gguf?.architecture).toBe("llama");
    const bMeta = JSON.parse(await readFile(join(b.cacheDir, "models/stories260k/metadata.json"), "utf8"));
    expect(bMeta.artifact.files).toEqual([
      { path: "stories260K.gguf", size_bytes: model.size_bytes, sha256: STORIES_SHA256 },
    ]);
    // A hashed its in-place file once and keeps the digest in its catalog
    const aMeta = JSON.parse(await readFile(join(a.cacheDir, "models/stories260k/metadata.json"), "utf8"));
    expect(aMeta.artifact.files[0]).toMatchObject({ path: STORIES_MODEL, sha256: STORIES_SHA256 });
    // nothing left behind in B's tmp
    expect(await readdir(join(b.cacheDir, "tmp"))).toEqual([]);

    // a second request is served from B's catalog, without asking A
    const again = await provision(b.hive.url, {
      ref: "stories260k",
      peers: [{ hive_id: "gone", url: "http://127.0.0.1:1" }],
    });
    expect(again.last?.event).toBe("done");
    expect(narration(again.events)).toEqual([]);

    const spawned = await b.api.post("/v1/workers", { model: "stories260k", worker_id: "lan-llm", parallel: 1 });
    expect(spawned.status, spawned.text).toBe(201);
    try {
      const infer = await postJson(
        `${spawned.body.url}/v1/infer`,
        { prompt: "Once upon a time", max_tokens: 12, temperature: 0 },
        { token: TOKEN },
      );
      expect(infer.status, infer.text).toBe(200);
      expect(infer.body.text.startsWith(STORIES_GREEDY_PREFIX), infer.body.text).toBe(true);
    } finally {
      expect((await b.api.delete("/v1/workers/lan-llm")).status).toBe(200);
    }
  }, 120_000);

  it("a model no peer has is a 404 naming the peers asked; an unreachable peer is skipped for the next", async () => {
    const none = await provision(b.hive.url, { ref: "no-such-model", peers: [peerA()] });
    expect(none.last?.event).toBe("error");
    expect(none.last?.data.code).toBe("model_not_found");
    expect(none.last?.data.message).toMatch(/no-such-model.*hive hive-a: model 'no-such-model' was not found/);

    await b.api.delete("/v1/models/stories260k");
    const r = await provision(b.hive.url, {
      ref: "stories260k",
      peers: [{ hive_id: "hive-down", url: "http://127.0.0.1:1" }, peerA()],
    });
    expect(r.last?.event, JSON.stringify(r.events)).toBe("done");
    const said = narration(r.events).join("\n");
    expect(said).toMatch(/fetching stories260k from hive hive-down failed: cannot reach hive hive-down/);
    expect(said).toMatch(/fetched stories260k from hive hive-a/);
  }, 60_000);

  it("the file route: cluster token, Range (206, Content-Range, suffix), 416 for bad ranges, HEAD, 404s, no path traversal", async () => {
    const size = (await stat(STORIES_MODEL)).size;
    const file = `${a.hive.url}/v1/models/stories260k/files/stories260K.gguf`;
    const auth = { authorization: `Bearer ${TOKEN}` };

    expect((await fetch(file)).status).toBe(401);
    expect((await fetch(file, { headers: { authorization: "Bearer wrong" } })).status).toBe(401);
    expect((await fetch(`${a.hive.url}/v1/models/stories260k`)).status).toBe(401);

    const whole = await fetch(file, { headers: auth });
    expect(whole.status).toBe(200);
    expect(whole.headers.get("accept-ranges")).toBe("bytes");
    expect(whole.headers.get("etag")).toBe(`"${STORIES_SHA256}"`);
    expect(Number(whole.headers.get("content-length"))).toBe(size);
    expect(Buffer.compare(Buffer.from(await whole.arrayBuffer()), await readFile(STORIES_MODEL))).toBe(0);

    const head4 = await fetch(file, { headers: { ...auth, range: "bytes=0-3" } });
    expect(head4.status).toBe(206);
    expect(head4.headers.get("content-range")).toBe(`bytes 0-3/${size}`);
    expect(Buffer.from(await head4.arrayBuffer()).toString("latin1")).toBe("GGUF");

    const tail = await fetch(file, { headers: { ...auth, range: "bytes=-10" } });
    expect(tail.status).toBe(206);
    expect(tail.headers.get("content-range")).toBe(`bytes ${size - 10}-${size - 1}/${size}`);
    expect(
      Buffer.compare(Buffer.from(await tail.arrayBuffer()), (await readFile(STORIES_MODEL)).subarray(size - 10)),
    ).toBe(0);

    const open = await fetch(file, { headers: { ...auth, range: `bytes=${size - 5}-${size + 100}` } });
    expect(open.status).toBe(206);
    expect(open.headers.get("content-range")).toBe(`bytes ${size - 5}-${size - 1}/${size}`);
    expect((await open.arrayBuffer()).byteLength).toBe(5);

    for (const bad of [`bytes=${size}-`, "bytes=10-5", "bytes=0-1,4-5", "items=0-1", "bytes=-0", "bytes=-"]) {
      const r = await fetch(file, { headers: { ...auth, range: bad } });
      expect(r.status, bad).toBe(416);
      expect(r.headers.get("content-range"), bad).toBe(`bytes */${size}`);
      expect(((await r.json()) as any).error.code).toBe("range_not_satisfiable");
    }

    const head = await fetch(file, { method: "HEAD", headers: auth });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get("content-length"))).toBe(size);
    expect((await head.arrayBuffer()).byteLength).toBe(0);

    const described = await a.api.get("/v1/models/stories260k");
    expect(described.status).toBe(200);
    expect(described.body.files).toEqual([{ name: "stories260K.gguf", size_bytes: size, sha256: STORIES_SHA256 }]);

    expect((await a.api.get("/v1/models/unknown-model")).status).toBe(404);
    expect((await a.api.get("/v1/models/unknown-model/files/x.gguf")).status).toBe(404);
    expect((await a.api.get("/v1/models/stories260k/files/other.gguf")).status).toBe(404);
    // names that try to climb out of the cache: refused before any file is opened
    for (const path of [
      "/v1/models/stories260k/files/..%2F..%2Fconfig%2Fcluster-token",
      "/v1/models/stories260k/files/%2Fetc%2Fpasswd",
      "/v1/models/..%2F..%2Fconfig/files/cluster-token",
      "/v1/models/Stories260K..%5C/files/x",
    ]) {
      const r = await a.api.get(path);
      expect(r.status, path).toBe(400);
    }
    // dot segments are resolved by the URL itself; whatever route that lands on, no file comes out
    for (const path of ["/v1/models/stories260k/files/../../../config/cluster-token", "/v1/models/%2E%2E/files/x"]) {
      const climb = await fetch(`${a.hive.url}${path}`, { headers: auth });
      expect(climb.status, path).toBeGreaterThanOrEqual(400);
      expect(climb.status, path).toBeLessThan(500);
      expect(await climb.text()).not.toContain(TOKEN);
    }
  });

  it("a peer file that does not match its sha256 is rejected with a clear error and stays out of B's catalog", async () => {
    // a copy registered on A, hashed once (GET), then bit rot: the bytes change, the size and mtime do not
    const copy = await copyStoriesModel(join(a.tmp, "rotten.gguf"));
    expect((await a.api.post("/v1/models", { ref: copy })).body.id).toBe("rotten");
    expect((await a.api.get("/v1/models/rotten")).body.files[0].sha256).toBe(STORIES_SHA256);
    const before = await stat(copy);
    const bytes = await readFile(copy);
    const middle = Math.floor(bytes.length / 2);
    bytes[middle] = (bytes[middle] as number) ^ 0xff;
    await writeFile(copy, bytes);
    await utimes(copy, before.atime, before.mtime);

    const r = await provision(b.hive.url, { ref: "rotten", peers: [{ hive_id: "hive-a", url: a.hive.url }] });
    expect(r.last?.event, JSON.stringify(r.events)).toBe("error");
    expect(r.last?.data.code).toBe("checksum_mismatch");
    expect(r.last?.data.message).toMatch(
      new RegExp(
        `rotten.*hive hive-a: the file downloaded from .* has sha256 [0-9a-f]{64}, but ${STORIES_SHA256} was expected`,
      ),
    );
    expect(await catalogIds(b)).not.toContain("rotten");
    expect((await readdir(join(b.cacheDir, "tmp"))).filter((f) => f.startsWith("rotten"))).toEqual([]);

    // a file used in place that was modified (a newer mtime) is hashed again: the listing follows the file
    const now = new Date();
    await utimes(copy, now, now);
    const rehashed = (await a.api.get("/v1/models/rotten")).body.files[0].sha256;
    expect(rehashed).toBe(createHash("sha256").update(bytes).digest("hex"));
    const ok = await provision(b.hive.url, { ref: "rotten", peers: [{ hive_id: "hive-a", url: a.hive.url }] });
    expect(ok.last?.event, JSON.stringify(ok.events)).toBe("done");
    expect(await sha256(ok.last?.data.model.path)).toBe(rehashed);
  }, 60_000);
});

describe("model sharing on the LAN: an interrupted fetch resumes (a TCP proxy that stalls the link)", () => {
  let a: TestHive;
  let b: TestHive;
  let proxy: GateProxy;
  let modelPath: string;
  let size: number;

  beforeAll(async () => {
    const model = await cachedGeneratedModel(40 * MiB);
    modelPath = model.path;
    size = (await stat(modelPath)).size;
    [a, b] = await Promise.all([lanHive("hive-a"), lanHive("hive-b")]);
    const reg = await a.api.post("/v1/models", { ref: modelPath });
    expect(reg.status, reg.text).toBe(200);
    proxy = await GateProxy.start(a.hive.url);
  }, 120_000);
  afterAll(async () => {
    await proxy?.close();
    await Promise.all([a?.close(), b?.close()]);
  });

  it("cancelled midway, the part stays; asked again, B fetches only the rest and the file checks out", async () => {
    const id = (await a.api.get("/v1/models")).body.models[0].id as string;
    const peers = [{ hive_id: "hive-a", url: proxy.url }];
    // the link stalls after 45 % of the file; the client (the queen) gives up and goes away
    proxy.budget = Math.round(size * 0.45);
    const first = await provision(b.hive.url, { ref: id, peers }, (e) => e.event === "progress" && proxy.holding);
    expect(first.events.some((e) => e.event === "done")).toBe(false);
    const failed = await waitFor(
      async () => (await b.api.get("/v1/models")).body.models.find((m: any) => m.id === id && m.status === "Failed"),
      15_000,
      "B's entry to say the fetch was cancelled",
    );
    expect(failed.error).toMatch(/cancelled; the part is kept/);
    const part = join(b.cacheDir, "tmp", `${id}--${modelPath.split("/").at(-1)}.part`);
    expect((await stat(part)).size).toBeGreaterThan(0);

    proxy.reset();
    proxy.release();
    const second = await provision(b.hive.url, { ref: id, peers });
    expect(second.last?.event, JSON.stringify(second.events)).toBe("done");
    expect(narration(second.events).join("\n")).toMatch(/resumed: [\d.]+ MiB were already here/);
    // the second fetch moved the rest of the file (plus headers and the file list), not the whole
    expect(proxy.forwarded).toBeLessThan(size * 0.6);
    expect(proxy.forwarded).toBeGreaterThan(size * 0.5);
    const fetched = second.last?.data.model.path as string;
    expect(await sha256(fetched)).toBe(await sha256(modelPath));
  }, 180_000);
});

describe("model sharing on the LAN: Hugging Face references (test hub fixture)", () => {
  let hub: HubServer;
  let a: TestHive;
  let b: TestHive;
  const REF = "ggml-org/models:tinyllamas/stories260K.gguf";

  beforeAll(async () => {
    hub = await startHubServer({
      repos: { "ggml-org/models": { files: { "tinyllamas/stories260K.gguf": { path: STORIES_MODEL } } } },
    });
    const env = (home: string) => ({ HF_ENDPOINT: hub.url, HF_TOKEN: "", HF_HOME: home });
    [a, b] = await Promise.all([lanHive("hive-a", env("/nonexistent/a")), lanHive("hive-b", env("/nonexistent/b"))]);
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await hub?.close();
  });

  it("with no peer that has it, B says why and downloads from the Hub; then A fetches B's copy over the LAN, not from the Hub", async () => {
    const fromHub = await provision(b.hive.url, { ref: REF, peers: [{ hive_id: "hive-a", url: a.hive.url }] });
    expect(fromHub.last?.event, JSON.stringify(fromHub.events)).toBe("done");
    expect(narration(fromHub.events).join("\n")).toMatch(
      /no hive on the LAN delivered .* \(hive hive-a: model .* was not found.*\); downloading it from Hugging Face instead/,
    );
    expect(hub.stats.bytesServed("ggml-org/models/tinyllamas/stories260K.gguf")).toBe((await stat(STORIES_MODEL)).size);

    // now A asks for the same reference with B as its peer: the LAN, not the Hub
    hub.stats.reset();
    const fromB = await provision(a.hive.url, { ref: REF, peers: [{ hive_id: "hive-b", url: b.hive.url }] });
    expect(fromB.last?.event, JSON.stringify(fromB.events)).toBe("done");
    expect(narration(fromB.events).join("\n")).toMatch(/from hive hive-b on the LAN/);
    expect(hub.stats.requests).toEqual([]);
    expect(await sha256(fromB.last?.data.model.path)).toBe(STORIES_SHA256);
    expect(fromB.last?.data.model.id).toBe(fromHub.last?.data.model.id);
  }, 60_000);
});
