import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { parseSse } from "@rbee/contract";
import { describe, expect, it } from "vitest";
import { formatSseFrame, SseWriter } from "../src/http/sse.js";

async function* chunks(...parts: string[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield new TextEncoder().encode(p);
}

async function collect(gen: AsyncIterable<unknown>) {
  const out: unknown[] = [];
  for await (const x of gen) out.push(x);
  return out;
}

describe("SSE framing", () => {
  it("splits multi-line data into data lines and refuses newlines in event and id", () => {
    expect(formatSseFrame("token", "a\nb", 3)).toBe("id: 3\nevent: token\ndata: a\ndata: b\n\n");
    expect(formatSseFrame(undefined, { x: 1 })).toBe('data: {"x":1}\n\n');
    expect(() => formatSseFrame("to\nken", "x")).toThrow(/newline/);
    expect(() => formatSseFrame("token", "x", "1\n2")).toThrow(/newline/);
  });

  it("parses what it writes, across arbitrary chunk boundaries and CRLF line ends", async () => {
    const text =
      formatSseFrame("token", { text: "héllo\nworld" }, 7) + ": a comment\r\n\r\nevent: done\r\ndata: 1\r\n\r\n";
    const bytes = new TextEncoder().encode(text);
    // split every few bytes, including inside the multi-byte é and between \r and \n
    const parts: Uint8Array[] = [];
    for (let i = 0; i < bytes.length; i += 3) parts.push(bytes.slice(i, i + 3));
    async function* gen() {
      yield* parts;
    }
    const events = await collect(parseSse(gen()));
    expect(events).toEqual([
      { event: "token", data: JSON.stringify({ text: "héllo\nworld" }), id: "7" },
      { event: "done", data: "1", id: "7" },
    ]);
  });

  it("names events without an event field 'message' and joins data lines", async () => {
    expect(await collect(parseSse(chunks("data: a\n", "data: b\n\n")))).toEqual([
      { event: "message", data: "a\nb", id: undefined },
    ]);
  });

  it("waits for drain under backpressure and reports a closed connection", async () => {
    let writer: SseWriter | undefined;
    let sendResult: Promise<boolean> | undefined;
    const server = createServer((_req, res) => {
      writer = new SseWriter(res);
      // far more than the socket buffers: send resolves only as the client reads
      sendResult = writer.send("big", "x".repeat(8 * 1024 * 1024));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const { port } = server.address() as AddressInfo;
    const res = await fetch(`http://127.0.0.1:${port}/`);
    expect(res.headers.get("content-type")).toMatch(/text\/event-stream/);
    expect(res.headers.get("cache-control")).toMatch(/no-cache/);
    const reader = res.body!.getReader();
    let received = 0;
    while (received < 8 * 1024 * 1024) {
      const { value, done } = await reader.read();
      if (done) break;
      received += value.length;
    }
    expect(await sendResult).toBe(true);
    await reader.cancel();
    // the server hears of the closed connection when its socket does (a busy machine takes a while)
    for (let waited = 0; !writer!.closed && waited < 5000; waited += 20) await new Promise((r) => setTimeout(r, 20));
    expect(await writer!.send("after", "x")).toBe(false);
    expect(writer!.closed).toBe(true);
    server.close();
  });

  it("write: undefined for a frame written at once, a Promise under backpressure, undefined once closed", async () => {
    let writer: SseWriter | undefined;
    let small: Promise<boolean> | undefined;
    let big: Promise<boolean> | undefined;
    const server = createServer((_req, res) => {
      writer = new SseWriter(res);
      small = writer.write("token", { text: "a" });
      big = writer.write("big", "x".repeat(8 * 1024 * 1024));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const { port } = server.address() as AddressInfo;
    const res = await fetch(`http://127.0.0.1:${port}/`);
    const reader = res.body!.getReader();
    let received = 0;
    while (received < 8 * 1024 * 1024) {
      const { value, done } = await reader.read();
      if (done) break;
      received += value.length;
    }
    expect(small).toBeUndefined();
    expect(big).toBeInstanceOf(Promise);
    expect(await big).toBe(true);
    await reader.cancel();
    await new Promise((r) => setTimeout(r, 50));
    expect(writer!.write("after", "x")).toBeUndefined();
    server.close();
  });
});
