import { createHash, createHmac } from "node:crypto";

/**
 * AWS Signature Version 4 (the `Authorization` header form), as S3 and every S3-compatible store
 * (MinIO, R2, B2) check it. Written from AWS's documentation ("Create a signed AWS API request"),
 * checked against its published examples in test/sigv4.test.ts.
 */

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  /** For temporary credentials (AWS_SESSION_TOKEN): sent and signed as `x-amz-security-token`. */
  sessionToken?: string | undefined;
}

export interface RequestToSign {
  method: string;
  /** The request's URL; its pathname must already be encoded as {@link uriEncodePath} encodes it. */
  url: URL;
  /** Headers besides `host`, `x-amz-date`, `x-amz-content-sha256` (which signing adds). */
  headers?: Record<string, string>;
  /** The payload's sha256 in hex, or "UNSIGNED-PAYLOAD". */
  payloadSha256: string;
}

export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** RFC 3986 percent-encoding as SigV4 wants it: everything but A-Z a-z 0-9 - . _ ~ (and `/` when `path`). */
export function uriEncode(s: string, path = false): string {
  let out = "";
  for (const byte of Buffer.from(s, "utf8")) {
    const ch = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-._~]/.test(ch) || (path && ch === "/")) out += ch;
    else out += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** An object key as a URL path (each segment encoded once, as S3 signs it). */
export function uriEncodePath(path: string): string {
  return uriEncode(path, true);
}

/** `20130524T000000Z` */
export function amzDate(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");
}

/** The key that signs a day's requests for one region and service. */
export function signingKey(secretAccessKey: string, day: string, region: string, service: string): Buffer {
  const kDate = createHmac("sha256", `AWS4${secretAccessKey}`).update(day).digest();
  const kRegion = createHmac("sha256", kDate).update(region).digest();
  const kService = createHmac("sha256", kRegion).update(service).digest();
  return createHmac("sha256", kService).update("aws4_request").digest();
}

function canonicalQuery(url: URL): string {
  const pairs = [...url.searchParams].map(([k, v]) => [uriEncode(k), uriEncode(v)] as const);
  pairs.sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join("&");
}

/**
 * The headers to send with the request: the given ones, `x-amz-date`, `x-amz-content-sha256`, the
 * session token if any, and `authorization`. `host` is signed but not returned (fetch sets it from
 * the URL, to the same value).
 */
export function signRequest(
  req: RequestToSign,
  credentials: AwsCredentials,
  region: string,
  service: string,
  now: Date = new Date(),
): Record<string, string> {
  const stamp = amzDate(now);
  const day = stamp.slice(0, 8);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers ?? {})) headers[k.toLowerCase()] = v;
  headers["x-amz-date"] = stamp;
  headers["x-amz-content-sha256"] = req.payloadSha256;
  if (credentials.sessionToken) headers["x-amz-security-token"] = credentials.sessionToken;
  const toSign: Record<string, string> = { ...headers, host: req.url.host };
  const names = Object.keys(toSign).sort();
  const canonicalHeaders = names.map((n) => `${n}:${String(toSign[n]).trim().replace(/\s+/g, " ")}\n`).join("");
  const signedHeaders = names.join(";");
  const canonicalRequest = [
    req.method.toUpperCase(),
    req.url.pathname || "/",
    canonicalQuery(req.url),
    canonicalHeaders,
    signedHeaders,
    req.payloadSha256,
  ].join("\n");
  const scope = `${day}/${region}/${service}/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", stamp, scope, sha256Hex(canonicalRequest)].join("\n");
  const signature = createHmac("sha256", signingKey(credentials.secretAccessKey, day, region, service))
    .update(stringToSign)
    .digest("hex");
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return headers;
}
