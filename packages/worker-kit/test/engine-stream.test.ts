import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { SseMessage } from "@rbee/contract";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EngineClient } from "../src/adapter/engine-client.js";

/** An engine stand-in: each path writes its reply in the pieces a test gives it. */
const replies = new Map<string, (res: ServerResponse) => void>();
let server: Server;
let client: EngineClient;

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      const reply = replies.get(req.url ?? "");
      if (reply === undefined) res.writeHead(404).end(JSON.stringify({ error: "no such path" }));
      else reply(res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  client = new EngineClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, "the test engine");
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** Writes `parts` one by one, a few ms apart, so that they arrive as separate chunks; then ends (or cuts). */
function pieces(contentType: string, parts: (string | Buffer)[], end: "end" | "cut" = "end") {
  return (res: ServerResponse) => {
    res.writeHead(200, { "content-type": contentType });
    let i = 0;
    const next = () => {
      const part = parts[i++];
      if (part !== undefined) {
        res.write(part);
        setTimeout(next, 5);
      } else if (end === "end") res.end();
      else res.socket?.destroy();
    };
    next();
  };
}

const split = (text: string, at: number[]) => {
  const bytes = Buffer.from(text);
  const out: Buffer[] = [];
  let from = 0;
  for (const to of [...at, bytes.length]) {
    out.push(bytes.subarray(from, to));
    from = to;
  }
  return out;
};

describe("the engine stream reader (NDJSON)", () => {
  it("hands over each line as an object, across chunk borders inside a line and inside a UTF-8 character", async () => {
    const text = '{"response":"hé"}\n\n{"response":"llo"}\r\n{"done":true}';
    // cut inside "é" (2 bytes) and between \r and \n
    const eAt = Buffer.from(text).indexOf(0xc3) + 1;
    const crAt = Buffer.from(text).indexOf(13) + 1;
    replies.set("/nd/ok", pieces("application/x-ndjson", split(text, [5, eAt, crAt])));
    const lines: unknown[] = [];
    await client.streamNdjson("/nd/ok", { x: 1 }, {}, (line) => {
      lines.push(line);
      return undefined;
    });
    expect(lines).toEqual([{ response: "hé" }, { response: "llo" }, { done: true }]);
  });

  it("ends with engine_stream_broken at a line that is not a JSON object, quoting it", async () => {
    replies.set("/nd/bad", pieces("application/x-ndjson", ['{"a":1}\n', "[1,2]\n", '{"b":2}\n']));
    const lines: unknown[] = [];
    const err = await client
      .streamNdjson("/nd/bad", {}, {}, (line) => {
        lines.push(line);
        return undefined;
      })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "engine_stream_broken", statusCode: 502 });
    expect(String((err as Error).message)).toBe(
      "the stream from the test engine broke: a line that is not a JSON object: [1,2]",
    );
    expect(lines).toEqual([{ a: 1 }]);
  });

  it("stops reading at 'stop', and waits for a returned promise before the next line", async () => {
    replies.set(
      "/nd/stop",
      pieces("application/x-ndjson", ['{"n":1}\n', '{"n":2}\n', '{"n":3}\n{"n":4}\n', '{"n":5}\n']),
    );
    const seen: number[] = [];
    let releasedAt = 0;
    await client.streamNdjson("/nd/stop", {}, {}, (line) => {
      const n = line.n as number;
      seen.push(n);
      if (n === 1) {
        // the client is slow: the next chunk is not read before this settles
        return new Promise((resolve) =>
          setTimeout(() => {
            releasedAt = seen.length;
            resolve(undefined);
          }, 50),
        );
      }
      return n === 3 ? "stop" : undefined;
    });
    expect(releasedAt).toBe(1);
    expect(seen).toEqual([1, 2, 3]);
  });
});

describe("the engine stream reader (SSE)", () => {
  it("hands over each event, and a connection cut mid-stream is engine_stream_broken, never a hang", async () => {
    replies.set("/sse/cut", pieces("text/event-stream", ["data: one\n\n", "event: token\nda", "ta: two\n\n"], "cut"));
    const events: SseMessage[] = [];
    const err = await client
      .stream("/sse/cut", {}, {}, (m) => {
        events.push(m);
        return undefined;
      })
      .catch((e: unknown) => e);
    expect(events.map((e) => [e.event, e.data])).toEqual([
      ["message", "one"],
      ["token", "two"],
    ]);
    expect(err).toMatchObject({ code: "engine_stream_broken", retryable: true });
    expect(String((err as Error).message)).toMatch(/^the stream from the test engine broke: /);
  });

  it("an error status throws the engine's words, and a throw from the handler ends the stream with it", async () => {
    await expect(client.stream("/missing", {}, {}, () => undefined)).rejects.toThrow(
      "the engine answered /missing with HTTP 404: no such path",
    );
    replies.set("/sse/ok", pieces("text/event-stream", ["data: 1\n\n", "data: 2\n\n"]));
    await expect(
      client.stream("/sse/ok", {}, {}, () => {
        throw new Error("the handler gave up");
      }),
    ).rejects.toThrow("the handler gave up");
  });

  it("resolves when the signal aborts mid-stream", async () => {
    replies.set(
      "/sse/long",
      pieces(
        "text/event-stream",
        Array.from({ length: 200 }, (_, i) => `data: ${i}\n\n`),
      ),
    );
    const ac = new AbortController();
    let n = 0;
    await client.stream("/sse/long", {}, { signal: ac.signal }, () => {
      if (++n === 3) ac.abort();
      return undefined;
    });
    expect(n).toBeGreaterThanOrEqual(3);
    expect(n).toBeLessThan(200);
  });
});
