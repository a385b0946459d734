import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { extname, join, relative, sep } from "node:path";
import type { HttpContext } from "./context.js";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".webp": "image/webp",
  ".woff2": "font/woff2",
  ".txt": "text/plain; charset=utf-8",
  ".map": "application/json",
};

interface StaticFile {
  type: string;
  body: Buffer;
  /** The same bytes compressed at build time (`file.br`, `file.gz` beside it), when present. */
  br: Buffer | undefined;
  gzip: Buffer | undefined;
  etag: string;
  immutable: boolean;
}

export interface StaticFilesOptions {
  /** Paths (from the root, starting with "/") whose names carry a content hash: cached for a year. */
  immutable?: (path: string) => boolean;
  /** Extra headers on every answer (a Content-Security-Policy for pages). */
  headers?: Record<string, string>;
}

function* walk(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(full);
    else if (entry.isFile()) yield full;
  }
}

/**
 * A folder of built static files (a web page), read into memory once: small, and it never changes
 * while the process runs. Hashed assets are `immutable` for a year, everything else `no-cache`
 * (revalidated by ETag); precompressed `.br` / `.gz` siblings are sent to clients that accept them.
 */
export class StaticFiles {
  readonly root: string;
  readonly #files = new Map<string, StaticFile>();
  readonly #headers: Record<string, string>;

  constructor(root: string, options: StaticFilesOptions = {}) {
    this.root = root;
    this.#headers = options.headers ?? {};
    const immutable = options.immutable ?? (() => false);
    for (const full of walk(root)) {
      const ext = extname(full);
      if (ext === ".br" || ext === ".gz") continue;
      const path = `/${relative(root, full).split(sep).join("/")}`;
      const body = readFileSync(full);
      const sibling = (suffix: string) => (existsSync(full + suffix) ? readFileSync(full + suffix) : undefined);
      this.#files.set(path, {
        type: TYPES[ext] ?? "application/octet-stream",
        body,
        br: sibling(".br"),
        gzip: sibling(".gz"),
        etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"`,
        immutable: immutable(path),
      });
    }
  }

  /** The folder's files, or undefined when it does not exist or has no index.html. */
  static load(root: string, options?: StaticFilesOptions): StaticFiles | undefined {
    try {
      if (!statSync(join(root, "index.html")).isFile()) return undefined;
    } catch {
      return undefined;
    }
    return new StaticFiles(root, options);
  }

  has(path: string): boolean {
    return this.#files.has(path);
  }

  /** Every file's path and its size as a client would receive it (brotli when present), for benchmarks. */
  sizes(): Array<{ path: string; bytes: number; br: number | undefined; gzip: number | undefined }> {
    return [...this.#files].map(([path, f]) => ({
      path,
      bytes: f.body.length,
      br: f.br?.length,
      gzip: f.gzip?.length,
    }));
  }

  /** Answers with the file at `path` (a path from the root, "/index.html"); false when there is none. */
  serve(ctx: HttpContext, path: string): boolean {
    const file = this.#files.get(path);
    if (!file) return false;
    const res = ctx.res;
    const accept = ctx.header("accept-encoding") ?? "";
    const encoding =
      file.br && /\bbr\b/.test(accept) ? "br" : file.gzip && /\bgzip\b/.test(accept) ? "gzip" : undefined;
    const body = encoding === "br" ? file.br : encoding === "gzip" ? file.gzip : file.body;
    res.setHeader("content-type", file.type);
    res.setHeader("cache-control", file.immutable ? "public, max-age=31536000, immutable" : "no-cache");
    res.setHeader("etag", file.etag);
    res.setHeader("vary", "accept-encoding");
    res.setHeader("x-content-type-options", "nosniff");
    for (const [k, v] of Object.entries(this.#headers)) res.setHeader(k, v);
    const match = ctx.header("if-none-match");
    if (match?.split(",").some((t) => t.trim().replace(/^W\//, "") === file.etag)) {
      res.writeHead(304).end();
      return true;
    }
    if (encoding) res.setHeader("content-encoding", encoding);
    res.setHeader("content-length", (body as Buffer).length);
    res.writeHead(200);
    res.end(ctx.method === "HEAD" ? undefined : body);
    return true;
  }
}
