import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { brotliCompressSync, gunzipSync, gzipSync } from "node:zlib";
import { NotFoundError } from "@rbee/contract";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Router } from "../src/http/router.js";
import { HttpServer } from "../src/http/server.js";
import { StaticFiles } from "../src/http/static-files.js";
import { silentLogger } from "../src/log.js";

const INDEX = "<!doctype html><title>t</title><script src=/assets/app-1a2b.js></script>";
const APP = "console.log('hello');".repeat(50);

describe("StaticFiles: a built page served from memory", () => {
  let server: HttpServer;
  let url = "";

  beforeAll(async () => {
    const root = mkdtempSync(join(tmpdir(), "rbee-static-"));
    mkdirSync(join(root, "assets"));
    writeFileSync(join(root, "index.html"), INDEX);
    writeFileSync(join(root, "assets", "app-1a2b.js"), APP);
    writeFileSync(join(root, "assets", "app-1a2b.js.br"), brotliCompressSync(APP));
    writeFileSync(join(root, "assets", "app-1a2b.js.gz"), gzipSync(APP));
    const files = StaticFiles.load(root, {
      immutable: (p) => p.startsWith("/assets/"),
      headers: { "content-security-policy": "default-src 'self'" },
    });
    expect(files).toBeDefined();
    const router = new Router()
      .get("/", (ctx) => {
        files?.serve(ctx, "/index.html");
      })
      .get("/assets/:file", (ctx) => {
        if (!files?.serve(ctx, `/assets/${ctx.params.file}`)) throw new NotFoundError("no such asset");
      });
    server = new HttpServer({ router, log: silentLogger() });
    url = (await server.listen(0, "127.0.0.1")).url;
  });

  afterAll(() => server?.close());

  it("index.html is revalidated every time (no-cache + ETag, 304 when unchanged)", async () => {
    const res = await fetch(`${url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(res.headers.get("cache-control")).toBe("no-cache");
    expect(res.headers.get("content-security-policy")).toBe("default-src 'self'");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(await res.text()).toBe(INDEX);
    const etag = res.headers.get("etag") ?? "";
    expect(etag).toMatch(/^".+"$/);
    expect((await fetch(`${url}/`, { headers: { "if-none-match": etag } })).status).toBe(304);
    expect((await fetch(`${url}/`, { headers: { "if-none-match": `W/${etag}` } })).status).toBe(304);
    expect((await fetch(`${url}/`, { headers: { "if-none-match": '"other"' } })).status).toBe(200);
  });

  it("hashed assets are immutable for a year, sent precompressed to clients that accept it", async () => {
    const plain = await fetch(`${url}/assets/app-1a2b.js`, { headers: { "accept-encoding": "identity" } });
    expect(plain.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(plain.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(plain.headers.get("content-encoding")).toBeNull();
    expect(await plain.text()).toBe(APP);
    // fetch decodes what it is sent: read the raw bytes with node:http instead
    const raw = async (encoding: string) => {
      const { request } = await import("node:http");
      return new Promise<{ encoding: string | undefined; body: Buffer; vary: string | undefined }>(
        (resolve, reject) => {
          request(`${url}/assets/app-1a2b.js`, { headers: { "accept-encoding": encoding } }, (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("end", () =>
              resolve({
                encoding: res.headers["content-encoding"],
                body: Buffer.concat(chunks),
                vary: res.headers.vary,
              }),
            );
          })
            .on("error", reject)
            .end();
        },
      );
    };
    const br = await raw("gzip, deflate, br");
    expect(br.encoding).toBe("br");
    expect(br.body.length).toBeLessThan(APP.length / 5);
    expect(br.vary).toBe("accept-encoding");
    const gz = await raw("gzip");
    expect(gz.encoding).toBe("gzip");
    expect(gunzipSync(gz.body).toString()).toBe(APP);
  });

  it("HEAD answers the headers alone; a file that is not there is the caller's 404", async () => {
    const head = await fetch(`${url}/assets/app-1a2b.js`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
    expect((await fetch(`${url}/assets/nothing.js`)).status).toBe(404);
    expect((await fetch(`${url}/assets/..%2Findex.html`)).status).toBe(404);
    expect((await fetch(`${url}/assets/app-1a2b.js.br`)).status).toBe(404);
  });

  it("load() is undefined for a folder without index.html (the page was not built)", () => {
    expect(StaticFiles.load(mkdtempSync(join(tmpdir(), "rbee-static-empty-")))).toBeUndefined();
    expect(StaticFiles.load("/nonexistent/rbee")).toBeUndefined();
  });
});
