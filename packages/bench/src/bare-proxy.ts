/**
 * The floor under the routing bench: a Node process that forwards each request's bytes to the
 * next worker in turn over keep-alive connections and sends the answer back, each in one write as the
 * queen does, doing nothing else (no parsing, validation, scheduling, logging or metrics). What it costs per request is what Node's
 * HTTP server and client cost on this machine; the queen can only add to it.
 *
 * An answer that is a stream (text/event-stream) is forwarded chunk by chunk as it arrives, which is
 * the floor under the queen bench's streamed completions.
 *
 * Run as a child: `node bare-proxy.js <worker url> ...`; prints `{"url": ...}` once listening.
 */
import { Agent, createServer, request } from "node:http";
import type { AddressInfo } from "node:net";

const targets = process.argv.slice(2).map((u) => new URL("/v1/infer", u));
const agent = new Agent({ keepAlive: true, maxSockets: 256 });
let next = 0;

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
    const target = targets[next++ % targets.length] as URL;
    const headers = { ...req.headers, "content-length": String(body.length) };
    const out = request(target, { method: "POST", agent, headers }, (answer) => {
      const type = answer.headers["content-type"] ?? "";
      if (type.startsWith("text/event-stream")) {
        // a stream: each chunk forwarded as it arrives (the queen bench's floor)
        res.writeHead(answer.statusCode ?? 502, { "content-type": type, "cache-control": "no-cache" });
        res.flushHeaders();
        answer.on("data", (c: Buffer) => res.write(c));
        answer.on("end", () => res.end());
        return;
      }
      const parts: Buffer[] = [];
      answer.on("data", (c: Buffer) => parts.push(c));
      answer.on("end", () => {
        res.writeHead(answer.statusCode ?? 502, { "content-type": answer.headers["content-type"] ?? "" });
        res.end(parts.length === 1 ? parts[0] : Buffer.concat(parts));
      });
    });
    // as the queen does: a small request must not wait for Nagle's algorithm
    out.once("socket", (socket) => socket.setNoDelay(true));
    out.on("error", () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    out.end(body);
  });
});
server.keepAliveTimeout = 65_000;
server.listen(0, "127.0.0.1", () => {
  const { port } = server.address() as AddressInfo;
  console.log(JSON.stringify({ url: `http://127.0.0.1:${port}` }));
});
// exit normally on SIGTERM, so that a `node --cpu-prof` run writes its profile
process.once("SIGTERM", () => process.exit(0));
