import { type Hive, startHive } from "@rbee/hive";
import { type Queen, startQueen } from "@rbee/queen";
import { type ClientRequestOptions, readBody, sendRequest } from "@rbee/server-kit";
import { quietLog, tempRbeeDirs, trickleRequest } from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

interface Reply {
  status: number;
  text: string;
  body: { error?: { message: string; code: string } } & Record<string, unknown>;
  headers: Record<string, string | string[] | undefined>;
}

async function call(url: string, o: ClientRequestOptions = {}): Promise<Reply> {
  const res = await sendRequest(url, { timeoutMs: 30_000, ...o });
  const text = await readBody(res);
  let body: Reply["body"] = {};
  try {
    body = JSON.parse(text);
  } catch {}
  return { status: res.statusCode ?? 0, text, body, headers: res.headers };
}

/** A job that passes validation without any hive (it fails later, in its stream). */
const JOB = JSON.stringify({ operation: { type: "download_model", model: "stories260k" } });

/** A JSON schema nested `depth` levels, as text (too deep for JSON.stringify's own stack). */
function nested(depth: number): string {
  return `${'{"type":"object","properties":{"a":'.repeat(depth)}{"type":"string"}${"}}".repeat(depth)}`;
}

describe("cross-site requests, DNS rebinding, deep JSON and slow clients (issue 15: defects 5, 6, 7)", () => {
  let queen: Queen;
  let hive: Hive;
  const saved = { ...process.env };

  beforeAll(async () => {
    // short limits, so that a trickling client is cut off within the test
    process.env.RBEE_REQUEST_TIMEOUT_MS = "1500";
    process.env.RBEE_HEADERS_TIMEOUT_MS = "1000";
    process.env.RBEE_ALLOWED_ORIGINS = "https://app.allowed.example";
    const dirs = tempRbeeDirs("guard");
    queen = await startQueen({ port: 0, configDir: dirs.configDir, cacheDir: dirs.cacheDir, log: quietLog("queen") });
    hive = await startHive({
      port: 0,
      queenUrl: queen.url,
      hiveId: "guard-hive",
      cacheDir: dirs.cacheDir,
      configDir: dirs.configDir,
      log: quietLog("hive"),
      env: { ...process.env, RBEE_DEVICES: "[]" },
    });
  });
  afterAll(async () => {
    process.env = saved;
    await hive?.close();
    await queen?.close();
  });

  it("the probe of issue 15 (text/plain, a foreign Origin and Host) gets no job started", async () => {
    const r = await call(`${queen.url}/v1/jobs`, {
      method: "POST",
      body: JOB,
      headers: { "content-type": "text/plain", origin: "http://evil.example", host: "attacker.example" },
    });
    expect(r.status, r.text).toBe(403);
  });

  it("a JSON route refuses another content type from a browser page with 415, and takes application/json", async () => {
    // even from an allowed origin: a page can send these cross-site without asking first
    const origin = "https://app.allowed.example";
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]) {
      const r = await call(`${queen.url}/v1/jobs`, {
        method: "POST",
        body: JOB,
        headers: { "content-type": type, origin },
      });
      expect(r.status, `${type}: ${r.text}`).toBe(415);
      expect(r.body.error?.message).toMatch(/Content-Type: application\/json/);
    }
    // a command-line client names no Origin: `curl -d` (form-urlencoded) is read as JSON, as Ollama does
    const curl = await call(`${queen.url}/v1/jobs`, {
      method: "POST",
      body: JOB,
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    expect(curl.status, curl.text).toBe(202);
    const ok = await call(`${queen.url}/v1/jobs`, {
      method: "POST",
      body: JOB,
      headers: { "content-type": "application/json; charset=utf-8" },
    });
    expect(ok.status, ok.text).toBe(202);
    // the hive alike: a page's text/plain is refused (with the Origin check first, as the hive allows none)
    const hb = await call(`${hive.url}/v1/worker-heartbeat`, {
      method: "POST",
      body: "{}",
      token: hive.token,
      headers: { "content-type": "text/plain", origin: "http://evil.example" },
    });
    expect([403, 415]).toContain(hb.status);
  });

  it("a foreign Origin is refused with 403 (queen and hive); the same origin and an allowed one pass", async () => {
    for (const origin of ["http://evil.example", "null", "http://127.0.0.1:1"]) {
      const r = await call(`${queen.url}/v1/cluster`, { headers: { origin } });
      expect(r.status, `${origin}: ${r.text}`).toBe(403);
      expect(r.body.error?.code).toBe("origin_not_allowed");
    }
    const h = await call(`${hive.url}/v1/workers`, { token: hive.token, headers: { origin: "http://evil.example" } });
    expect(h.status, h.text).toBe(403);

    // the dashboard served by the queen itself
    const same = await call(`${queen.url}/v1/jobs`, { method: "POST", body: JOB, headers: { origin: queen.url } });
    expect(same.status, same.text).toBe(202);
    // an origin allowed with RBEE_ALLOWED_ORIGINS gets CORS headers and its preflight answered
    const allowed = await call(`${queen.url}/v1/cluster`, { headers: { origin: "https://app.allowed.example" } });
    expect(allowed.status, allowed.text).toBe(200);
    expect(allowed.headers["access-control-allow-origin"]).toBe("https://app.allowed.example");
    const preflight = await call(`${queen.url}/v1/chat/completions`, {
      method: "OPTIONS",
      headers: {
        origin: "https://app.allowed.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers["access-control-allow-headers"]).toBe("authorization, content-type");
  });

  it("HEAD on a stream (events, a job's stream) answers its headers and ends, rather than streaming forever", async () => {
    const events = await call(`${queen.url}/v1/events`, { method: "HEAD", timeoutMs: 10_000 });
    expect(events.status).toBe(200);
    expect(events.headers["content-type"]).toMatch(/^text\/event-stream/);
    const job = await call(`${queen.url}/v1/jobs`, {
      method: "POST",
      body: JOB,
      headers: { "content-type": "application/json" },
    });
    expect(job.status, job.text).toBe(202);
    const stream = await call(`${queen.url}${job.body.sse_url}`, { method: "HEAD", timeoutMs: 10_000 });
    expect(stream.status).toBe(200);
  });

  it("the queen answers only to host names of this machine (DNS rebinding)", async () => {
    const port = new URL(queen.url).port;
    for (const host of ["attacker.example", `attacker.example:${port}`, "127.0.0.1.nip.io"]) {
      const r = await call(`${queen.url}/v1/cluster`, { headers: { host } });
      expect(r.status, `${host}: ${r.text}`).toBe(403);
      expect(r.body.error?.code).toBe("host_not_allowed");
    }
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, "rbee.localhost"]) {
      const r = await call(`${queen.url}/v1/cluster`, { headers: { host } });
      expect(r.status, `${host}: ${r.text}`).toBe(200);
    }
  });

  it("a json_schema nested 5,000 levels is a 400 naming the limit (chat, jobs, the worker contract)", async () => {
    const deep = nested(5000);
    const chat = await call(`${queen.url}/v1/chat/completions`, {
      method: "POST",
      body: `{"model":"stories260k","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":${deep}}}}`,
    });
    expect(chat.status, chat.text.slice(0, 300)).toBe(400);
    expect(chat.body.error?.message).toMatch(/nested more than 64 levels/);
    const job = await call(`${queen.url}/v1/jobs`, {
      method: "POST",
      body: `{"operation":{"type":"infer","model":"stories260k","prompt":"x","json_schema":${deep}}}`,
    });
    expect(job.status, job.text.slice(0, 300)).toBe(400);
    const hb = await call(`${hive.url}/v1/worker-heartbeat`, { method: "POST", body: deep, token: hive.token });
    expect(hb.status, hb.text.slice(0, 300)).toBe(400);
    // brackets inside strings do not count
    const inString = await call(`${queen.url}/v1/jobs`, {
      method: "POST",
      body: { operation: { type: "infer", model: "stories260k", prompt: "[".repeat(10_000) } },
    });
    expect(inString.status, inString.text).toBe(202);
  });

  it("a client that trickles its body or its headers is answered 408 and cut off (queen and hive)", async () => {
    const routes = [
      { url: queen.url, path: "/v1/jobs" },
      { url: hive.url, path: "/v1/worker-heartbeat" },
    ];
    for (const { url, path } of routes) {
      const body = await trickleRequest(
        url,
        `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${hive.token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{`,
        "x".repeat(1000),
        { everyMs: 100, giveUpMs: 20_000 },
      );
      expect(body.closed, `${url}: ${body.response}`).toBe(true);
      expect(body.response).toMatch(/^HTTP\/1\.1 408/);
      const headers = await trickleRequest(url, "GET /health HTTP/1.1\r\n", "X-Slow: ".padEnd(1000, "y"), {
        everyMs: 100,
        giveUpMs: 20_000,
      });
      expect(headers.closed, `${url}: ${headers.response}`).toBe(true);
      expect(headers.response).toMatch(/^HTTP\/1\.1 408/);
    }
  });
});
