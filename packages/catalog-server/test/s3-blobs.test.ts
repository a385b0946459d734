import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  BlobStoreConfigError,
  openBlobStore,
  type S3BlobOptions,
  S3BlobStore,
  s3OptionsFrom,
  signRequest,
} from "@rbee/catalog-server";
import { S3ApiFixture } from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * The S3 blob store against the S3 API FIXTURE (path-style, every request's SigV4 signature
 * verified with the configured secret): configuration from `--blobs` and the AWS variables, the
 * check at start (each way it can be refused says why), Range reads, the session token.
 */
describe("S3 blob store (against the S3 API fixture)", () => {
  const creds = { accessKeyId: "AKIDS3BLOBTEST", secretAccessKey: "s3-blob-test-secret/with+chars" };
  const s3 = new S3ApiFixture({ ...creds, region: "us-west-2", buckets: ["packages"] });
  const root = mkdtempSync(join(tmpdir(), "rbee-s3-blobs-"));
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    const url = await s3.start();
    env = {
      AWS_ENDPOINT_URL: url,
      AWS_REGION: "us-west-2",
      AWS_ACCESS_KEY_ID: creds.accessKeyId,
      AWS_SECRET_ACCESS_KEY: creds.secretAccessKey,
    };
  });
  afterAll(async () => {
    await s3.stop();
    rmSync(root, { recursive: true, force: true });
  });

  const opts = (over: Partial<S3BlobOptions> = {}): S3BlobOptions => ({
    ...s3OptionsFrom("s3://packages/rbee/blobs", env),
    ...over,
  });
  const refusal = async (o: S3BlobOptions) => {
    const err = await S3BlobStore.open(o).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(BlobStoreConfigError);
    return (err as Error).message;
  };

  it("reads --blobs s3://bucket/prefix and the AWS variables; the S3 endpoint variable wins over the general one", () => {
    const o = s3OptionsFrom("s3://packages/rbee/blobs/", {
      ...env,
      AWS_ENDPOINT_URL_S3: "http://127.0.0.1:9",
      AWS_REGION: "",
      AWS_DEFAULT_REGION: "eu-central-1",
      AWS_SESSION_TOKEN: "tok",
    });
    expect(o).toMatchObject({ bucket: "packages", prefix: "rbee/blobs", region: "eu-central-1" });
    expect(o.endpoint?.href).toBe("http://127.0.0.1:9/");
    expect(o.credentials.sessionToken).toBe("tok");
    expect(s3OptionsFrom("s3://packages", { ...env, AWS_REGION: undefined })).toMatchObject({
      prefix: "",
      region: "us-east-1",
    });
  });

  it("refuses a bad location, missing credentials and a bad endpoint with what to do", () => {
    expect(() => s3OptionsFrom("s3://", env)).toThrow(/not an S3 location; write s3:\/\/<bucket>\/<prefix>/);
    expect(() => s3OptionsFrom("s3://Bad_Bucket/x", env)).toThrow(BlobStoreConfigError);
    expect(() => s3OptionsFrom("s3://packages/x", { ...env, AWS_SECRET_ACCESS_KEY: "" })).toThrow(
      /needs credentials for the bucket, and AWS_SECRET_ACCESS_KEY is not set; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/,
    );
    expect(() => s3OptionsFrom("s3://packages/x", { AWS_REGION: "x" })).toThrow(
      /AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set/,
    );
    expect(() => s3OptionsFrom("s3://packages/x", { ...env, AWS_ENDPOINT_URL: "ftp://x" })).toThrow(
      /AWS_ENDPOINT_URL is 'ftp:\/\/x', not an http\(s\) URL/,
    );
  });

  it("checks the bucket at start: a missing bucket, a wrong secret, an unknown key, a wrong region, no endpoint", async () => {
    expect(await refusal(opts({ bucket: "no-such-bucket" }))).toMatch(
      /bucket 'no-such-bucket' does not exist at http:\/\/127\.0\.0\.1:\d+ \(404 NoSuchBucket \(The specified bucket does not exist\)\); create it/,
    );
    // a signature made with another secret is refused by the fixture, as S3 refuses it
    expect(await refusal(opts({ credentials: { ...creds, secretAccessKey: "wrong" } }))).toMatch(
      /refused the request's signature \(403 SignatureDoesNotMatch .*\); check AWS_SECRET_ACCESS_KEY, and AWS_REGION \(us-west-2\)/,
    );
    expect(await refusal(opts({ credentials: { ...creds, accessKeyId: "AKIDNOBODY" } }))).toMatch(
      /does not know the access key AKIDNOBODY \(403 InvalidAccessKeyId/,
    );
    expect(await refusal(opts({ region: "ap-south-1" }))).toMatch(
      /refused the request's region ap-south-1 \(400 AuthorizationHeaderMalformed.*\); set AWS_REGION/,
    );
    expect(await refusal(opts({ endpoint: new URL("http://127.0.0.1:1") }))).toMatch(
      /cannot be used: S3 PutObject .*cannot reach http:\/\/127\.0\.0\.1:1/,
    );
    expect(s3.requests.filter((r) => r.code === "SignatureDoesNotMatch").length).toBeGreaterThan(0);
  });

  it("the fixture refuses a request whose signed headers were changed on the way (SignatureDoesNotMatch)", async () => {
    const url = new URL(`${s3.url}/packages/x`);
    const headers = signRequest(
      { method: "GET", url, headers: { range: "bytes=0-9" }, payloadSha256: "UNSIGNED-PAYLOAD" },
      creds,
      "us-west-2",
      "s3",
    );
    const res = await fetch(url, { headers: { ...headers, range: "bytes=0-99" } });
    expect(res.status).toBe(403);
    expect(await res.text()).toMatch(/<Code>SignatureDoesNotMatch<\/Code>/);
    const ok = await fetch(url, { headers });
    expect(ok.status).toBe(404);
    expect(await ok.text()).toMatch(/<Code>NoSuchKey<\/Code>/);
  });

  it("puts under the prefix, reads whole and by Range, knows the size; the probe object is gone", async () => {
    const store = (await openBlobStore("s3://packages/rbee/blobs", join(root, "data"), env)) as S3BlobStore;
    expect(store).toBeInstanceOf(S3BlobStore);
    const key = "a".repeat(64);
    const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
    await store.put(key, data);
    expect(s3.object("packages", `rbee/blobs/${key}`)).toEqual(data);
    expect([...s3.objects.keys()]).toEqual([`packages/rbee/blobs/${key}`]);
    expect(await store.size(key)).toBe(1000);
    const read = async (start?: number, end?: number) => {
      const { size, stream } = await store.open(key, start, end);
      return { size, bytes: Buffer.from(await new Response(stream).arrayBuffer()) };
    };
    expect(await read()).toEqual({ size: 1000, bytes: data });
    expect(await read(100, 199)).toEqual({ size: 1000, bytes: data.subarray(100, 200) });
    expect(await read(990)).toEqual({ size: 1000, bytes: data.subarray(990) });
    expect(s3.requests.at(-1)).toMatchObject({ method: "GET", range: "bytes=990-", status: 206 });
    await expect(store.size("b".repeat(64))).rejects.toThrow(/HeadObject .* 404 NotFound/);
    await expect(store.open("b".repeat(64), 0, 9)).rejects.toThrow(/GetObject .* 404 NoSuchKey/);
    await expect(store.put("../escape", data)).rejects.toThrow(/not a blob key/);
  });

  it("sends and signs the session token of temporary credentials", async () => {
    const withToken = new S3ApiFixture({ ...creds, sessionToken: "session-xyz", buckets: ["b1b"] });
    const url = await withToken.start();
    try {
      const o = s3OptionsFrom("s3://b1b", {
        ...env,
        AWS_ENDPOINT_URL: url,
        AWS_REGION: "us-east-1",
        AWS_SESSION_TOKEN: "session-xyz",
      });
      await S3BlobStore.open(o);
      expect(await refusal({ ...o, credentials: { ...creds } })).toMatch(/400 InvalidToken/);
    } finally {
      await withToken.stop();
    }
  });
});
