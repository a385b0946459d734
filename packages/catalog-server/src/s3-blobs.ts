import type { BlobStore } from "./catalog-store.js";
import { type AwsCredentials, EMPTY_SHA256, sha256Hex, signRequest, uriEncodePath } from "./sigv4.js";

/** Where an S3 blob store keeps blobs and how it reaches them. */
export interface S3BlobOptions {
  bucket: string;
  /** Key prefix without leading or trailing slash ("" for the bucket's root). */
  prefix: string;
  region: string;
  credentials: AwsCredentials;
  /** An S3-compatible endpoint (MinIO, R2, B2, a fixture): path-style addressing. Default: AWS's. */
  endpoint?: URL | undefined;
}

/** The blob store is not usable as configured (bad URL, no credentials, a bucket that refuses us). */
export class BlobStoreConfigError extends Error {
  override name = "BlobStoreConfigError";
}

/** What S3 answered when it refused a request: its HTTP status and its XML error's Code and Message. */
export class S3Error extends Error {
  override name = "S3Error";
  constructor(
    readonly operation: string,
    readonly status: number,
    readonly code: string,
    readonly s3Message: string,
    readonly key: string,
  ) {
    super(`S3 ${operation} ${key}: ${status} ${code}${s3Message ? `: ${s3Message}` : ""}`);
  }
}

const REQUEST_TIMEOUT_MS = 60_000;

/**
 * Reads `--blobs s3://bucket/prefix` and the standard AWS variables: AWS_ENDPOINT_URL_S3 or
 * AWS_ENDPOINT_URL (an S3-compatible store, path-style), AWS_REGION or AWS_DEFAULT_REGION (default
 * us-east-1), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN.
 */
export function s3OptionsFrom(blobsUrl: string, env: NodeJS.ProcessEnv): S3BlobOptions {
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(blobsUrl);
  if (m === null || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(m[1] as string)) {
    throw new BlobStoreConfigError(
      `--blobs ${blobsUrl}: not an S3 location; write s3://<bucket>/<prefix> (a bucket name of 3-63 lowercase letters, digits, dots and hyphens)`,
    );
  }
  const accessKeyId = env.AWS_ACCESS_KEY_ID ?? "";
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY ?? "";
  if (accessKeyId === "" || secretAccessKey === "") {
    const missing = [accessKeyId === "" && "AWS_ACCESS_KEY_ID", secretAccessKey === "" && "AWS_SECRET_ACCESS_KEY"]
      .filter(Boolean)
      .join(" and ");
    throw new BlobStoreConfigError(
      `--blobs ${blobsUrl} needs credentials for the bucket, and ${missing} ${missing.includes(" and ") ? "are" : "is"} not set; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary credentials)`,
    );
  }
  const endpointText = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
  let endpoint: URL | undefined;
  if (endpointText !== undefined) {
    try {
      endpoint = new URL(endpointText);
    } catch {
      endpoint = undefined;
    }
    if (endpoint === undefined || !/^https?:$/.test(endpoint.protocol)) {
      throw new BlobStoreConfigError(
        `AWS_ENDPOINT_URL${env.AWS_ENDPOINT_URL_S3 ? "_S3" : ""} is '${endpointText}', not an http(s) URL; set it to the S3-compatible endpoint, like http://127.0.0.1:9000`,
      );
    }
  }
  return {
    bucket: m[1] as string,
    prefix: (m[2] ?? "").replace(/^\/+|\/+$/g, ""),
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || "us-east-1",
    credentials: { accessKeyId, secretAccessKey, sessionToken: env.AWS_SESSION_TOKEN || undefined },
    endpoint,
  };
}

function xmlField(xml: string, name: string): string {
  return new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml)?.[1] ?? "";
}

/**
 * Blobs as objects in an S3-compatible bucket, `<prefix>/<sha256>`, requests signed with SigV4.
 * Downloads are proxied (a Range becomes the GetObject's Range), so that hives reach only the
 * catalog, and the catalog's headers and rate limit stay as they are for the directory store.
 */
export class S3BlobStore implements BlobStore {
  readonly #o: S3BlobOptions;

  constructor(o: S3BlobOptions) {
    this.#o = o;
  }

  /** A store checked for use: it writes, reads and deletes a probe object, and says clearly why not. */
  static async open(o: S3BlobOptions): Promise<S3BlobStore> {
    const store = new S3BlobStore(o);
    await store.check();
    return store;
  }

  /** `s3://bucket/prefix`, for messages. */
  get location(): string {
    return `s3://${this.#o.bucket}${this.#o.prefix ? `/${this.#o.prefix}` : ""}`;
  }

  #objectKey(key: string): string {
    if (!/^[0-9a-f]{64}$/.test(key) && key !== ".rbee-catalog-probe") throw new Error(`not a blob key: ${key}`);
    return this.#o.prefix ? `${this.#o.prefix}/${key}` : key;
  }

  #url(objectKey: string): URL {
    const path = uriEncodePath(objectKey);
    const e = this.#o.endpoint;
    if (e !== undefined) {
      const base = e.pathname.replace(/\/+$/, "");
      return new URL(`${e.protocol}//${e.host}${base}/${this.#o.bucket}/${path}`);
    }
    // AWS: virtual-hosted style, except for bucket names with dots (TLS names cannot match them)
    const host = `s3.${this.#o.region}.amazonaws.com`;
    return this.#o.bucket.includes(".")
      ? new URL(`https://${host}/${this.#o.bucket}/${path}`)
      : new URL(`https://${this.#o.bucket}.${host}/${path}`);
  }

  async #request(
    operation: string,
    method: string,
    key: string,
    o: { body?: Buffer; headers?: Record<string, string>; timeoutMs?: number } = {},
  ): Promise<Response> {
    const url = this.#url(this.#objectKey(key));
    const headers = signRequest(
      {
        method,
        url,
        headers: o.headers,
        payloadSha256: o.body === undefined ? EMPTY_SHA256 : sha256Hex(o.body),
      },
      this.#o.credentials,
      this.#o.region,
      "s3",
    );
    // the timeout covers the answer's head; a download's body then streams for as long as it takes
    const ctrl = new AbortController();
    const timer = setTimeout(
      () => ctrl.abort(new Error(`no answer in ${(o.timeoutMs ?? REQUEST_TIMEOUT_MS) / 1000} s`)),
      o.timeoutMs ?? REQUEST_TIMEOUT_MS,
    );
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers,
        body: o.body === undefined ? undefined : new Uint8Array(o.body),
        signal: ctrl.signal,
      });
    } catch (err) {
      const e = err as Error & { cause?: Error };
      throw new Error(
        `S3 ${operation} ${this.location}/${key}: cannot reach ${url.origin} (${e.cause?.message ?? e.message})`,
      );
    } finally {
      clearTimeout(timer);
    }
    if (res.status >= 300) {
      const text = method === "HEAD" ? "" : await res.text().catch(() => "");
      const code = xmlField(text, "Code") || (res.status === 404 ? "NotFound" : res.status === 403 ? "Forbidden" : "");
      throw new S3Error(operation, res.status, code, xmlField(text, "Message"), `${this.location}/${key}`);
    }
    return res;
  }

  async put(key: string, data: Buffer): Promise<void> {
    const res = await this.#request("PutObject", "PUT", key, {
      body: data,
      headers: { "content-type": "application/x-tar" },
      timeoutMs: 10 * 60_000,
    });
    await res.arrayBuffer();
  }

  async size(key: string): Promise<number> {
    const res = await this.#request("HeadObject", "HEAD", key);
    const size = Number(res.headers.get("content-length"));
    if (!Number.isInteger(size) || size < 0) throw new Error(`S3 HeadObject ${key}: no Content-Length in the answer`);
    return size;
  }

  async open(key: string, start?: number, end?: number) {
    const ranged = start !== undefined || end !== undefined;
    const res = await this.#request("GetObject", "GET", key, {
      headers: ranged ? { range: `bytes=${start ?? 0}-${end ?? ""}` } : {},
    });
    const total = ranged
      ? Number(/\/(\d+)$/.exec(res.headers.get("content-range") ?? "")?.[1] ?? Number.NaN)
      : Number(res.headers.get("content-length"));
    if (ranged && res.status !== 206) {
      await res.body?.cancel();
      throw new Error(`S3 GetObject ${key}: asked for a Range and got ${res.status}, not 206`);
    }
    if (res.body === null) throw new Error(`S3 GetObject ${key}: the answer has no body`);
    return { size: total, stream: res.body as ReadableStream<Uint8Array> };
  }

  async delete(key: string): Promise<void> {
    const res = await this.#request("DeleteObject", "DELETE", key);
    await res.arrayBuffer();
  }

  /**
   * Writes, reads back and deletes a small probe object, so that a missing bucket, wrong
   * credentials or a missing permission stop the server at its start with S3's own reason, not at
   * the first publish. A refused delete is not an error (the catalog never deletes).
   */
  async check(): Promise<void> {
    const probe = ".rbee-catalog-probe";
    const body = Buffer.from(`rbee catalog server probe ${new Date().toISOString()}\n`);
    try {
      await this.put(probe, body);
      if ((await this.size(probe)) !== body.length) {
        throw new BlobStoreConfigError(`${this.location}: the probe object read back with another size`);
      }
    } catch (err) {
      if (err instanceof S3Error) throw new BlobStoreConfigError(explain(err, this.#o, this.location));
      if (err instanceof BlobStoreConfigError) throw err;
      throw new BlobStoreConfigError(`the blob store ${this.location} cannot be used: ${(err as Error).message}`);
    }
    await this.delete(probe).catch(() => undefined);
  }
}

function explain(err: S3Error, o: S3BlobOptions, location: string): string {
  const where = o.endpoint === undefined ? `AWS S3 (${o.region})` : o.endpoint.origin;
  const said = `${err.status} ${err.code}${err.s3Message ? ` (${err.s3Message})` : ""}`;
  switch (err.code) {
    case "NoSuchBucket":
      return `the blob store ${location}: bucket '${o.bucket}' does not exist at ${where} (${said}); create it, or name another in --blobs`;
    case "InvalidAccessKeyId":
      return `the blob store ${location}: ${where} does not know the access key ${o.credentials.accessKeyId} (${said}); check AWS_ACCESS_KEY_ID`;
    case "SignatureDoesNotMatch":
      return `the blob store ${location}: ${where} refused the request's signature (${said}); check AWS_SECRET_ACCESS_KEY, and AWS_REGION (${o.region})`;
    case "AuthorizationHeaderMalformed":
      return `the blob store ${location}: ${where} refused the request's region ${o.region} (${said}); set AWS_REGION to the bucket's region`;
    case "AccessDenied":
      return `the blob store ${location}: access denied by ${where} (${said}); the credentials need s3:PutObject and s3:GetObject on ${location}/*`;
    default:
      return `the blob store ${location}: ${where} answered ${err.operation} with ${said}; check the bucket, the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) and AWS_REGION`;
  }
}
