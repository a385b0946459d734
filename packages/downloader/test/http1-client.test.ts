import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { type AddressInfo, createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ChildHandle, REPO_ROOT } from "@rbee/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { downloadFile } from "../src/index.js";
import { type HubFixture, startHubFixture } from "./hub-fixture.js";

const BODY = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 256));
const SHA = createHash("sha256").update(BODY).digest("hex");
const FIXTURES = fileURLToPath(new URL("./fixtures", import.meta.url));

let f: HubFixture;
const servers: Array<Server | NetServer> = [];
beforeAll(async () => {
  f = await startHubFixture("http1");
});
afterAll(async () => {
  await f?.close();
});
afterEach(async () => {
  for (const s of servers.splice(0)) {
    await new Promise((resolve) => {
      s.close(resolve);
      if ("closeAllConnections" in s) s.closeAllConnections();
    });
  }
});

async function listen<S extends Server | NetServer>(server: S): Promise<string> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function httpServer(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = createServer(handler);
  let connections = 0;
  server.on("connection", () => connections++);
  const host = await listen(server);
  return { url: `http://${host}`, server, connections: () => connections };
}

/** A server that answers every request with the given raw bytes, then closes. */
async function rawServer(answer: Buffer | string): Promise<string> {
  const server = createNetServer((socket: Socket) => {
    socket.once("data", () => socket.end(answer));
  });
  return `http://${await listen(server)}`;
}

describe("the HTTP/1.1 client under downloadFile", () => {
  it("reads a chunked body and learns the size at its end", async () => {
    const { url } = await httpServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      for (let i = 0; i < BODY.length; i += 7000) res.write(BODY.subarray(i, i + 7000));
      res.end();
    });
    const r = await downloadFile({ url: `${url}/file`, ...f.paths("chunked.bin"), sha256: SHA });
    expect(r.size).toBe(BODY.length);
  });

  it("reads a body delimited by the connection's close", async () => {
    const url = await rawServer(Buffer.concat([Buffer.from("HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n"), BODY]));
    const r = await downloadFile({ url: `${url}/file`, ...f.paths("close.bin"), sha256: SHA });
    expect(r.size).toBe(BODY.length);
  });

  it("skips interim 1xx responses", async () => {
    const url = await rawServer(
      Buffer.concat([
        Buffer.from("HTTP/1.1 103 Early Hints\r\nlink: </x>; rel=preload\r\n\r\n"),
        Buffer.from(`HTTP/1.1 200 OK\r\ncontent-length: ${BODY.length}\r\n\r\n`),
        BODY,
      ]),
    );
    const r = await downloadFile({ url: `${url}/file`, ...f.paths("hints.bin"), sha256: SHA });
    expect(r.size).toBe(BODY.length);
  });

  it("keeps connections alive between requests, and survives the server closing an idle one", async () => {
    const { url, server, connections } = await httpServer((_req, res) => {
      res.writeHead(200, { "content-length": BODY.length });
      res.end(BODY);
    });
    for (let i = 0; i < 3; i++) await downloadFile({ url: `${url}/f${i}`, ...f.paths("keep.bin"), sha256: SHA });
    expect(connections()).toBe(1);
    // the server drops the idle connection; the next download must not wait for a stall
    server.closeIdleConnections();
    await new Promise((r) => setTimeout(r, 100));
    const t0 = performance.now();
    await downloadFile({ url: `${url}/h`, ...f.paths("keep.bin"), sha256: SHA, stallTimeoutMs: 5000 });
    expect(performance.now() - t0).toBeLessThan(4000);
    expect(connections()).toBe(2);
  });

  it("keeps the token on a redirect within the origin and drops it on one that leaves it", async () => {
    const seen: Array<[string, string | undefined]> = [];
    const other = await httpServer((req, res) => {
      seen.push([`other${req.url}`, req.headers.authorization]);
      res.writeHead(200, { "content-length": BODY.length });
      res.end(BODY);
    });
    const { url } = await httpServer((req, res) => {
      seen.push([req.url ?? "", req.headers.authorization]);
      if (req.url === "/a") res.writeHead(307, { location: "/b" }).end();
      else res.writeHead(302, { location: `${other.url}/c` }).end();
    });
    await downloadFile({
      url: `${url}/a`,
      ...f.paths("redirect.bin"),
      headers: { authorization: "Bearer t" },
      sha256: SHA,
    });
    expect(seen).toEqual([
      ["/a", "Bearer t"],
      ["/b", "Bearer t"],
      ["other/c", undefined],
    ]);
  });

  it("refuses a redirect loop", async () => {
    const { url } = await httpServer((_req, res) => res.writeHead(302, { location: "/again" }).end());
    await expect(downloadFile({ url: `${url}/x`, ...f.paths("loop.bin") })).rejects.toMatchObject({
      code: "download_failed",
      httpStatus: 302,
    });
  });

  it("fails clearly on a server that does not speak HTTP", async () => {
    const url = await rawServer("SSH-2.0-OpenSSH_9.6\r\n");
    const err = await downloadFile({
      url: `${url}/x`,
      ...f.paths("ssh.bin"),
      retry: { attempts: 2, baseDelayMs: 1 },
    }).catch((e: unknown) => e as Error);
    expect((err as Error).message).toMatch(/did not answer with HTTP/);
  });

  it("downloads over https (TLS), trusting the CA the process trusts", async () => {
    const [key, cert] = await Promise.all([
      readFile(join(FIXTURES, "localhost-test.key")),
      readFile(join(FIXTURES, "localhost-test.crt")),
    ]);
    const server = createHttpsServer({ key, cert }, (req, res) => {
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
      const from = m ? Number(m[1]) : 0;
      res.writeHead(m ? 206 : 200, {
        "content-length": BODY.length - from,
        ...(m ? { "content-range": `bytes ${from}-${BODY.length - 1}/${BODY.length}` } : {}),
      });
      res.end(BODY.subarray(from));
    });
    const host = await listen(server);
    const p = f.paths("tls.bin");
    // a child process, so that NODE_EXTRA_CA_CERTS (read at startup) can trust the test certificate
    const script = `
      const { downloadFile } = await import("@rbee/downloader");
      const r = await downloadFile(JSON.parse(process.argv[1]));
      console.log("sha256 " + r.sha256);`;
    const req = { url: `https://localhost:${host.split(":")[1]}/model.bin`, ...p, sha256: SHA };
    const child = new ChildHandle(process.execPath, ["--input-type=module", "-e", script, JSON.stringify(req)], {
      cwd: REPO_ROOT,
      env: { NODE_EXTRA_CA_CERTS: join(FIXTURES, "localhost-test.crt") },
    });
    const exit = await child.waitForExit(30_000);
    expect(child.stdout, child.tail()).toContain(`sha256 ${SHA}`);
    expect(exit.code).toBe(0);
    // without the CA the certificate is refused, and that is final (no retries)
    const refused = await downloadFile({ ...req, ...f.paths("tls.bin") }).catch((e: unknown) => e as Error);
    expect((refused as Error).message).toMatch(/certificate/i);
  });
});
