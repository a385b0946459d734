import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  HttpServer,
  HttpStatusError,
  loadServerTls,
  Router,
  requestJson,
  streamSse,
  TlsConfigError,
  TlsTrustError,
  tlsFilesFrom,
} from "@rbee/server-kit";
import { makeTestCertificates, quietLog, type TestCertificates } from "@rbee/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";

const Pong = z.object({ pong: z.literal(true), secure: z.boolean() });

let certs: TestCertificates;
const servers: HttpServer[] = [];

beforeAll(() => {
  certs = makeTestCertificates();
});
afterEach(() => {
  delete process.env.RBEE_TLS_CA;
});
afterAll(async () => {
  for (const s of servers) await s.close();
});

function router(): Router {
  return new Router()
    .get("/ping", (ctx) => ctx.send(200, { pong: true, secure: "encrypted" in ctx.req.socket }))
    .get("/events", async (ctx) => {
      const sse = ctx.sse();
      await sse.send("token", { text: "hi" });
      await sse.send("done", {});
    });
}

async function serve(tls?: ReturnType<typeof loadServerTls>): Promise<string> {
  const server = new HttpServer({ router: router(), log: quietLog("tls-test"), tls });
  servers.push(server);
  return (await server.listen(0, "127.0.0.1")).url;
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected the request to fail");
}

describe("HTTPS: server-kit's server and client with a real certificate made by openssl", () => {
  it("serves HTTPS and a client trusting the CA (the ca option) gets JSON and SSE", async () => {
    const url = await serve(loadServerTls({ certFile: certs.certFile, keyFile: certs.keyFile }));
    expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(await requestJson(`${url}/ping`, Pong, { ca: certs.ca })).toEqual({ pong: true, secure: true });
    const events: string[] = [];
    for await (const e of streamSse(`${url}/events`, { ca: certs.ca })) events.push(e.event);
    expect(events).toEqual(["token", "done"]);
  });

  it("RBEE_TLS_CA, read at request time, makes the client trust the CA", async () => {
    const url = await serve(loadServerTls({ certFile: certs.certFile, keyFile: certs.keyFile }));
    process.env.RBEE_TLS_CA = certs.caFile;
    expect((await requestJson(`${url}/ping`, Pong)).secure).toBe(true);
  });

  it("a client without the CA gets a clear error that says to set RBEE_TLS_CA", async () => {
    const url = await serve(loadServerTls({ certFile: certs.certFile, keyFile: certs.keyFile }));
    const err = await rejection(requestJson(`${url}/ping`, Pong, { what: "the queen" }));
    expect(err).toBeInstanceOf(TlsTrustError);
    expect(err.message).toContain(`the queen at ${url}/ping presented a certificate this client does not trust`);
    expect(err.message).toContain("set RBEE_TLS_CA to that CA's certificate");

    process.env.RBEE_TLS_CA = certs.strangerCaFile;
    const wrong = await rejection(requestJson(`${url}/ping`, Pong));
    expect(wrong).toBeInstanceOf(TlsTrustError);
    expect(wrong.message).toContain(`RBEE_TLS_CA=${certs.strangerCaFile} does not hold the CA that signed it`);
  });

  it("a certificate that does not name the host is refused, naming what it lists", async () => {
    const other = makeTestCertificates(["DNS:gpu-box.lan"]);
    const url = await serve(loadServerTls({ certFile: other.certFile, keyFile: other.keyFile }));
    const err = await rejection(requestJson(`${url}/ping`, Pong, { ca: other.ca }));
    expect(err).toBeInstanceOf(TlsTrustError);
    expect(err.message).toMatch(/presented a certificate for other names .*gpu-box\.lan/);
    expect(err.message).toContain("whose subjectAltName includes 127.0.0.1");
  });

  it("plain HTTP to the HTTPS port is answered 400 with 'use https://', not a bare reset", async () => {
    const url = await serve(loadServerTls({ certFile: certs.certFile, keyFile: certs.keyFile }));
    const plain = url.replace("https:", "http:");
    const err = await rejection(requestJson(`${plain}/ping`, Pong));
    expect(err).toBeInstanceOf(HttpStatusError);
    expect((err as HttpStatusError).status).toBe(400);
    expect((err as HttpStatusError).code).toBe("https_required");
    expect(err.message).toContain("this port speaks HTTPS only: use https://");
    // and the server still serves HTTPS afterwards
    expect((await requestJson(`${url}/ping`, Pong, { ca: certs.ca })).pong).toBe(true);
  });

  it("https:// to a plain HTTP server says that it does not speak TLS", async () => {
    const url = await serve();
    const err = await rejection(requestJson(`${url.replace("http:", "https:")}/ping`, Pong, { ca: certs.ca }));
    expect(err.message).toMatch(/does not speak TLS: use an http:\/\/ URL/);
  });
});

describe("TLS configuration errors name the file and the fix", () => {
  it("a certificate without its key, or a key without its certificate", () => {
    expect(() => tlsFilesFrom({ tlsCert: "cert.pem" }, {})).toThrow(
      /a TLS certificate \(.*cert\.pem\) was given without its private key: HTTPS needs both; give --tls-key/,
    );
    expect(() => tlsFilesFrom({}, { RBEE_TLS_KEY: "key.pem" })).toThrow(/without its certificate.*--tls-cert/);
    expect(tlsFilesFrom({}, {})).toBeUndefined();
    // paths become absolute: a daemon started in another directory still finds them
    expect(tlsFilesFrom({}, { RBEE_TLS_CERT: "c.pem", RBEE_TLS_KEY: "k.pem" })?.certFile).toBe(
      join(process.cwd(), "c.pem"),
    );
  });

  it("a missing file, a file that is not PEM, a key of another certificate, an encrypted key", () => {
    const missing = join(certs.dir, "nope.pem");
    expect(() => loadServerTls({ certFile: missing, keyFile: certs.keyFile })).toThrow(
      `cannot read the TLS certificate ${missing}: no such file; check --tls-cert (RBEE_TLS_CERT)`,
    );
    expect(() => loadServerTls({ certFile: certs.certFile, keyFile: missing })).toThrow(/private key .*no such file/);
    expect(() => loadServerTls({ certFile: certs.keyFile, keyFile: certs.keyFile })).toThrow(
      /is not a PEM certificate/,
    );
    expect(() => loadServerTls({ certFile: certs.certFile, keyFile: certs.certFile })).toThrow(
      /is not a PEM private key/,
    );
    expect(() => loadServerTls({ certFile: certs.certFile, keyFile: join(certs.dir, "stranger.key") })).toThrow(
      `the private key ${join(certs.dir, "stranger.key")} does not belong to the certificate ${certs.certFile}`,
    );
    const encrypted = join(certs.dir, "encrypted.key");
    execFileSync("openssl", ["pkey", "-in", certs.keyFile, "-aes256", "-passout", "pass:secret", "-out", encrypted]);
    expect(() => loadServerTls({ certFile: certs.certFile, keyFile: encrypted })).toThrow(
      /is encrypted with a passphrase, which a daemon cannot type/,
    );
    const err = (() => {
      try {
        loadServerTls({ certFile: missing, keyFile: missing });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(TlsConfigError);
  });

  it("an RBEE_TLS_CA that is not a certificate fails the request clearly", async () => {
    const url = await serve(loadServerTls({ certFile: certs.certFile, keyFile: certs.keyFile }));
    const bogus = join(certs.dir, "bogus-ca.pem");
    writeFileSync(bogus, "not a certificate\n");
    process.env.RBEE_TLS_CA = bogus;
    await expect(requestJson(`${url}/ping`, Pong)).rejects.toThrow(`RBEE_TLS_CA=${bogus} is not a PEM certificate`);
  });
});
