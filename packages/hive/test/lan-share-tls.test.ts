import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { makeTestCertificates, STORIES_SHA256 } from "@rbee/testing";
import { afterAll, describe, expect, it } from "vitest";
import { copyStoriesModel, startTestHive, type TestHive } from "./helpers/test-hive.js";

const TOKEN = "rbee_ct_lan-share-tls-test-token";

const open: TestHive[] = [];
afterAll(async () => {
  for (const h of open) await h.close();
});

describe("model sharing between hives that serve HTTPS with a private CA", () => {
  it("a hive fetches a model from another over https, trusting RBEE_TLS_CA, sha256-checked", async () => {
    const certs = makeTestCertificates();
    // the downloader (and every rbee client) trusts the CA this variable names
    process.env.RBEE_TLS_CA = certs.caFile;
    const env = { RBEE_DEVICES: "[]", RBEE_CLUSTER_TOKEN: TOKEN, RBEE_TLS_CA: certs.caFile };
    const tls = { tlsCert: certs.certFile, tlsKey: certs.keyFile };
    const a = await startTestHive({ hiveId: "tls-a", env, ...tls });
    open.push(a);
    const b = await startTestHive({ hiveId: "tls-b", env, ...tls });
    open.push(b);
    expect(a.hive.advertiseUrl).toMatch(/^https:\/\//);
    const model = await a.hive.resolveModel(await copyStoriesModel(join(a.tmp, "stories260K.gguf")));

    // the hive's own client (not this test's) fetches over https, trusting the CA
    const fetched = await b.hive.resolveModel(model.id, {}, undefined, [
      { hive_id: "tls-a", url: a.hive.advertiseUrl },
    ]);
    expect(fetched.status).toBe("Available");
    expect(fetched.source_url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\//);
    const bytes = await readFile(fetched.path as string);
    expect(createHash("sha256").update(bytes).digest("hex")).toBe(STORIES_SHA256);

    // without the CA, the refusal says what to set
    delete process.env.RBEE_TLS_CA;
    const c = await startTestHive({ hiveId: "tls-c", env: { ...env, RBEE_TLS_CA: "" }, ...tls });
    open.push(c);
    await expect(
      c.hive.resolveModel(model.id, {}, undefined, [{ hive_id: "tls-a", url: a.hive.advertiseUrl }]),
    ).rejects.toMatchObject({ message: expect.stringMatching(/does not trust.*set RBEE_TLS_CA/) });
  });
});
