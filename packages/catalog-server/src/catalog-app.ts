import {
  type CatalogArtifact,
  type CatalogVersion,
  type CatalogWorkerDetail,
  type CatalogWorkerSummary,
  DeviceKind,
  PackagePlatform,
  PublishWorkerRequest,
  RbeeError,
  ReviewRequest,
  SemVer,
  ValidationError,
  WorkerCategory,
  WorkerTypeId,
} from "@rbee/contract";
import { compareVersions, keyFingerprint, readPackage, sha256Hex, verifyPackageSignature } from "@rbee/worker-package";
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { z } from "zod";
import { accountOf } from "./accounts.js";
import type { Account, BlobStore, CatalogStore, StoredArtifact, StoredWorker } from "./catalog-store.js";
import { marketplacePage } from "./marketplace-page.js";
import { RateLimiter, type RateLimitOptions } from "./rate-limit.js";

export interface CatalogAppOptions {
  store: CatalogStore;
  blobs: BlobStore;
  /** Largest publish body in bytes (the base64 package and its fields). Default 64 MiB. */
  maxUploadBytes?: number;
  /** Writes (publishes, reviews) per client. Default 30 a minute. */
  writeLimit?: RateLimitOptions;
  /** Download bytes per second per response (0: unlimited), for a catalog on a thin uplink. */
  downloadBytesPerSecond?: number;
  /** The address of the client behind a request (rate limits are per client). */
  clientAddress?: (c: Context) => string;
  /** An rbee dashboard (a queen's URL) the marketplace page links to: "Install on my cluster". */
  dashboardUrl?: string;
}

const CATEGORY_INFO: Record<WorkerCategory, string> = {
  llm: "text generation and chat",
  image: "image generation",
  audio: "speech and audio",
  embeddings: "embeddings for search and retrieval",
  adapter: "adapters that put an existing engine behind the worker contract",
};

function parseQuery<S extends z.ZodType>(schema: S, value: string | undefined, param: string): z.infer<S> | undefined {
  if (value === undefined || value === "") return undefined;
  const r = schema.safeParse(value);
  if (!r.success)
    throw new ValidationError(`${param}: ${r.error.issues[0]?.message ?? "invalid"} (got '${value}')`, param);
  return r.data;
}

function positiveInt(value: string | undefined, param: string, fallback: number, max: number): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw new ValidationError(`${param} must be a whole number from 1 to ${max}, got '${value}'`, param);
  }
  return n;
}

/** The dashboard URL a marketplace links to, checked: http(s) only. */
function dashboardUrlOf(url: string | undefined): string | undefined {
  if (url === undefined || url === "") return undefined;
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) {
    throw new Error(
      `the dashboard URL must be an http:// or https:// address such as http://127.0.0.1:7833, got '${url}'`,
    );
  }
  return url.replace(/\/+$/, "");
}

function notFound(id: string): RbeeError {
  return new RbeeError(
    `no worker package '${id}' in this catalog; list them with GET /workers (rbee worker available)`,
    {
      statusCode: 404,
      code: "worker_not_found",
      param: "id",
    },
  );
}

/** The catalog server's HTTP API and marketplace page (docs/worker-catalog.md). */
export function createCatalogApp(o: CatalogAppOptions): Hono {
  const { store, blobs } = o;
  const limiter = new RateLimiter(o.writeLimit ?? { max: 30, windowMs: 60_000 });
  const maxUpload = o.maxUploadBytes ?? 64 * 1024 * 1024;
  const clientOf = o.clientAddress ?? (() => "unknown");
  const app = new Hono();

  app.onError((err, c) => {
    if (err instanceof RbeeError) {
      if (err.retryAfterSeconds !== undefined) c.header("retry-after", String(err.retryAfterSeconds));
      return c.json(err.toBody(), err.statusCode as 400);
    }
    if (err instanceof SyntaxError) {
      return c.json(
        {
          error: {
            message: `the body is not JSON: ${err.message}`,
            type: "invalid_request_error",
            code: "invalid_json",
            param: null,
          },
        },
        400,
      );
    }
    console.error(err);
    return c.json(
      { error: { message: "internal error", type: "server_error", code: "internal_error", param: null } },
      500,
    );
  });
  app.notFound((c) =>
    c.json(
      {
        error: {
          message: `no route ${c.req.method} ${new URL(c.req.url).pathname}`,
          type: "invalid_request_error",
          code: "not_found",
          param: null,
        },
      },
      404,
    ),
  );

  const rating = (id: string) => {
    const reviews = store.reviews(id);
    const avg = reviews.length === 0 ? null : reviews.reduce((s, r) => s + r.stars, 0) / reviews.length;
    return { rating: avg === null ? null : Math.round(avg * 10) / 10, review_count: reviews.length, reviews };
  };

  const summary = (w: StoredWorker): CatalogWorkerSummary & { reviews: ReturnType<typeof rating>["reviews"] } => {
    const latest = store.versions(w.id).find((v) => v.version === w.latest_version);
    const m = latest?.manifest;
    return {
      id: w.id,
      description: w.description,
      category: w.category,
      publisher: w.publisher,
      latest_version: w.latest_version,
      capabilities: m?.capabilities ?? [],
      device_kinds: m?.device_kinds ?? [],
      platforms: m?.platforms ?? [],
      ...rating(w.id),
      install_command: `rbee worker install ${w.id}`,
    };
  };

  const artifactOut = (a: StoredArtifact): CatalogArtifact => ({
    platform: a.platform,
    size_bytes: a.size_bytes,
    sha256: a.sha256,
    signature: a.signature,
    public_key: a.public_key,
  });

  app.get("/health", (c) => c.json({ status: "ok" }));
  const page = marketplacePage({ dashboardUrl: dashboardUrlOf(o.dashboardUrl) });
  app.get("/", (c) => c.html(page));

  app.get("/categories", (c) => {
    const all = store.listWorkers({});
    return c.json({
      categories: WorkerCategory.options.map((id) => ({
        id,
        description: CATEGORY_INFO[id],
        count: all.filter((w) => w.category === id).length,
      })),
    });
  });

  app.get("/workers", (c) => {
    const q = c.req.query();
    for (const k of Object.keys(q)) {
      if (!["category", "platform", "device_kind", "q", "page", "per_page"].includes(k)) {
        throw new ValidationError(
          `unknown query parameter '${k}': use category, platform, device_kind, q, page, per_page`,
          k,
        );
      }
    }
    const category = parseQuery(WorkerCategory, q.category, "category");
    const platform = parseQuery(PackagePlatform, q.platform, "platform");
    const deviceKind = parseQuery(DeviceKind, q.device_kind, "device_kind");
    const page = positiveInt(q.page, "page", 1, 100_000);
    const perPage = positiveInt(q.per_page, "per_page", 20, 100);
    const matching = store
      .listWorkers({ category, text: q.q })
      .map(summary)
      .filter((w) => platform === undefined || w.platforms.includes(platform) || w.platforms.includes("any"))
      .filter((w) => deviceKind === undefined || w.device_kinds.includes(deviceKind));
    const workers = matching.slice((page - 1) * perPage, page * perPage).map(({ reviews: _, ...w }) => w);
    return c.json({ workers, total: matching.length, page, per_page: perPage });
  });

  const workerOr404 = (id: string): StoredWorker => {
    const w = WorkerTypeId.safeParse(id).success ? store.worker(id) : undefined;
    if (w === undefined) throw notFound(id);
    return w;
  };

  app.get("/workers/:id", (c) => {
    const w = workerOr404(c.req.param("id"));
    const artifacts = store.artifacts(w.id);
    const versions: CatalogVersion[] = store
      .versions(w.id)
      .sort((a, b) => compareVersions(b.version, a.version))
      .map((v) => ({
        version: v.version,
        published_at: v.published_at,
        manifest: v.manifest,
        artifacts: artifacts.filter((a) => a.version === v.version).map(artifactOut),
      }));
    const detail: CatalogWorkerDetail = { ...summary(w), versions };
    return c.json(detail);
  });

  app.on(["GET", "HEAD"], "/workers/:id/download", async (c) => {
    const w = workerOr404(c.req.param("id"));
    const version = parseQuery(SemVer, c.req.query("version"), "version") ?? w.latest_version;
    const platform = parseQuery(PackagePlatform, c.req.query("platform"), "platform");
    const artifacts = store.artifacts(w.id, version);
    if (artifacts.length === 0) {
      const have = store
        .versions(w.id)
        .map((v) => v.version)
        .sort(compareVersions)
        .join(", ");
      throw new RbeeError(`${w.id} has no version ${version}; it has ${have}`, {
        statusCode: 404,
        code: "version_not_found",
        param: "version",
      });
    }
    const a =
      artifacts.find((x) => x.platform === platform) ??
      artifacts.find((x) => x.platform === "any") ??
      (platform === undefined && artifacts.length === 1 ? artifacts[0] : undefined);
    if (a === undefined) {
      throw new RbeeError(
        `${w.id}@${version} has no artifact for ${platform ?? "an unnamed platform"}; it has ${artifacts.map((x) => x.platform).join(", ")}`,
        { statusCode: 404, code: "platform_not_found", param: "platform" },
      );
    }
    const size = await blobs.size(a.blob_key);
    const headers: Record<string, string> = {
      "content-type": "application/x-tar",
      "accept-ranges": "bytes",
      etag: `"${a.sha256}"`,
      "x-checksum-sha256": a.sha256,
      "x-rbee-signature": a.signature,
      "x-rbee-public-key": a.public_key,
      "content-disposition": `attachment; filename="${w.id}-${version}-${a.platform}.tar"`,
    };
    let start = 0;
    let end = size - 1;
    let status: 200 | 206 = 200;
    const range = c.req.header("range");
    if (range !== undefined) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
      const from = m?.[1] ? Number(m[1]) : undefined;
      const to = m?.[2] ? Number(m[2]) : undefined;
      if (m === null || (from === undefined && to === undefined)) {
        return c.body(null, 416, { ...headers, "content-range": `bytes */${size}` });
      }
      if (from === undefined) start = Math.max(0, size - (to as number));
      else {
        start = from;
        if (to !== undefined) end = Math.min(to, size - 1);
      }
      if (start >= size || start > end) return c.body(null, 416, { ...headers, "content-range": `bytes */${size}` });
      status = 206;
      headers["content-range"] = `bytes ${start}-${end}/${size}`;
    }
    headers["content-length"] = String(end - start + 1);
    if (c.req.method === "HEAD") return c.body(null, status, headers);
    const { stream } = await blobs.open(a.blob_key, start, end);
    return c.body(throttle(stream, o.downloadBytesPerSecond ?? 0), status, headers);
  });

  const requireAccount = (authorization: string | undefined, what: string): Account => {
    const account = accountOf(store, authorization);
    if (account === undefined) {
      throw new RbeeError(
        authorization === undefined
          ? `${what} needs a catalog account's token: send Authorization: Bearer <token> (the catalog's operator creates accounts with \`rbee catalog account add\`)`
          : `that token belongs to no account of this catalog; ask its operator for one (\`rbee catalog account add\`)`,
        { statusCode: 401, code: "unauthorized" },
      );
    }
    return account;
  };

  app.post(
    "/workers",
    bodyLimit({
      maxSize: maxUpload,
      onError: () => {
        throw new RbeeError(
          `the upload is larger than this catalog takes (${maxUpload} bytes, base64 included); make the package smaller`,
          { statusCode: 413, code: "payload_too_large" },
        );
      },
    }),
    async (c) => {
      limiter.take(`write:${clientOf(c)}`);
      const account = requireAccount(c.req.header("authorization"), "publishing");
      if (!account.can_publish) {
        throw new RbeeError(`account '${account.name}' may review but not publish; ask the catalog's operator`, {
          statusCode: 403,
          code: "forbidden",
        });
      }
      const body = validate(PublishWorkerRequest, await c.req.json(), "publish request");
      const tarball = Buffer.from(body.package, "base64");
      const { manifest } = readPackage(tarball);
      if (!manifest.platforms.includes(body.platform)) {
        throw new ValidationError(
          `platform '${body.platform}' is not among the manifest's platforms (${manifest.platforms.join(", ")})`,
          "platform",
        );
      }
      const sha256 = sha256Hex(tarball);
      const what = { id: manifest.id, version: manifest.version, platform: body.platform, sha256 };
      if (!verifyPackageSignature(body.public_key, body.signature, what)) {
        throw new RbeeError(
          `the signature does not verify for ${manifest.id}@${manifest.version} (${body.platform}, sha256 ${sha256}) under key ${keyFingerprint(body.public_key)}; sign the package you upload (rbee worker publish does)`,
          { statusCode: 400, code: "bad_signature", param: "signature" },
        );
      }
      if (account.public_key !== null && account.public_key !== body.public_key) {
        throw new RbeeError(
          `publisher '${account.name}' signs with key ${keyFingerprint(account.public_key)}, not ${keyFingerprint(body.public_key)}; sign with your registered key`,
          { statusCode: 403, code: "wrong_publisher_key", param: "public_key" },
        );
      }
      const existing = store.worker(manifest.id);
      if (existing !== undefined && existing.publisher !== account.name) {
        throw new RbeeError(`'${manifest.id}' is published by '${existing.publisher}'; choose another id`, {
          statusCode: 403,
          code: "not_owner",
          param: "id",
        });
      }
      const now = new Date().toISOString();
      const latest =
        existing === undefined || compareVersions(manifest.version, existing.latest_version) > 0
          ? manifest.version
          : existing.latest_version;
      const isLatest = latest === manifest.version;
      const sameVersion = store.versions(manifest.id).find((v) => v.version === manifest.version);
      if (sameVersion !== undefined && JSON.stringify(sameVersion.manifest) !== JSON.stringify(manifest)) {
        throw versionExists(manifest.id, manifest.version);
      }
      await blobs.put(sha256, tarball);
      const ok = store.publish(
        {
          id: manifest.id,
          publisher: account.name,
          category: isLatest ? manifest.category : (existing?.category ?? manifest.category),
          description: isLatest ? manifest.description : (existing?.description ?? manifest.description),
          latest_version: latest,
          created_at: existing?.created_at ?? now,
          updated_at: now,
        },
        { worker_id: manifest.id, version: manifest.version, manifest, published_at: now },
        {
          worker_id: manifest.id,
          version: manifest.version,
          platform: body.platform,
          sha256,
          size_bytes: tarball.length,
          signature: body.signature,
          public_key: body.public_key,
          blob_key: sha256,
        },
      );
      if (!ok) throw versionExists(manifest.id, manifest.version);
      if (account.public_key === null) store.setPublisherKey(account.name, body.public_key);
      return c.json(
        { id: manifest.id, version: manifest.version, platform: body.platform, sha256, size_bytes: tarball.length },
        201,
      );
    },
  );

  app.post("/workers/:id/reviews", async (c) => {
    limiter.take(`write:${clientOf(c)}`);
    const account = requireAccount(c.req.header("authorization"), "a review");
    const w = workerOr404(c.req.param("id"));
    const body = validate(ReviewRequest, await c.req.json(), "review");
    const replaced = store.upsertReview(w.id, account.name, body.stars, body.text, new Date().toISOString());
    const review = store.reviews(w.id).find((r) => r.user === account.name);
    return c.json({ review, ...rating(w.id), reviews: undefined }, replaced ? 200 : 201);
  });

  return app;
}

function versionExists(id: string, version: string): RbeeError {
  return new RbeeError(
    `${id}@${version} is already published, and published versions never change; raise the version in rbee-worker.json and publish again`,
    { statusCode: 409, code: "version_exists", param: "version" },
  );
}

function validate<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const r = schema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    const path = issue?.path.join(".") || "(body)";
    throw new ValidationError(`invalid ${what}: ${path}: ${issue?.message ?? "invalid"}`, path);
  }
  return r.data;
}

/** The stream, no faster than `bytesPerSecond` (0: as is). */
function throttle(stream: ReadableStream<Uint8Array>, bytesPerSecond: number): ReadableStream<Uint8Array> {
  if (bytesPerSecond <= 0) return stream;
  const started = performance.now();
  let sent = 0;
  return stream.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      async transform(chunk, controller) {
        for (let i = 0; i < chunk.length; i += 16 * 1024) {
          const piece = chunk.subarray(i, i + 16 * 1024);
          sent += piece.length;
          const due = started + (sent / bytesPerSecond) * 1000;
          const wait = due - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          controller.enqueue(piece);
        }
      },
    }),
  );
}
