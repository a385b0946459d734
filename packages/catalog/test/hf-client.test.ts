import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { RbeeError } from "@rbee/contract";
import { inspectGguf, readGgufHeader } from "@rbee/gguf";
import {
  cachedGeneratedModel,
  type HubServer,
  requireStoriesModel,
  STORIES_SHA256,
  startHubServer,
} from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HfClient, type HfFile } from "../src/hf/hf-client.js";
import { HfAuthError, HfNotFoundError, HfUnavailableError } from "../src/hf/hf-errors.js";
import { NoGgufError, pickGguf } from "../src/hf/pick-gguf.js";
import { quantOfFileName } from "../src/hf/quant.js";

const MiB = 1024 * 1024;

async function caught(p: Promise<unknown>): Promise<RbeeError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RbeeError);
  return err as RbeeError;
}

// file lists as the tree API gives them, after the naming habits of real GGUF repos
const f = (path: string, size = 1000): HfFile => ({ path, size, lfs: path.endsWith(".gguf"), sha256: "a".repeat(64) });

/** Qwen's own GGUF repo: lower-case names, every common quant, and the F16. */
const QWEN_REPO: HfFile[] = [
  f(".gitattributes", 1519),
  f("LICENSE", 11343),
  f("README.md", 5300),
  ...["fp16", "q2_k", "q3_k_m", "q4_0", "q4_k_m", "q5_0", "q5_k_m", "q6_k", "q8_0"].map((q) =>
    f(`qwen2.5-0.5b-instruct-${q}.gguf`),
  ),
];

/** A bartowski-style repo: upper-case quants, the _L variants, and an importance matrix. */
const BARTOWSKI_REPO: HfFile[] = [
  f("README.md"),
  f("Llama-3.2-1B-Instruct.imatrix"),
  ...["f16", "Q8_0", "Q6_K_L", "Q6_K", "Q5_K_M", "Q4_K_S", "Q4_0", "IQ4_XS", "Q3_K_L", "IQ3_M"].map((q) =>
    f(`Llama-3.2-1B-Instruct-${q}.gguf`),
  ),
];

/** A vision model: a projector beside the language model, and a split BF16 in a folder. */
const VISION_REPO: HfFile[] = [
  f("mmproj-model-f16.gguf"),
  f("gemma-3-4b-it-Q8_0.gguf"),
  f("BF16/gemma-3-4b-it-BF16-00001-of-00002.gguf"),
  f("BF16/gemma-3-4b-it-BF16-00002-of-00002.gguf"),
];

/** A large model in split parts only, one set incomplete. */
const SPLIT_REPO: HfFile[] = [
  f("Q4_K_M/Big-Model-Q4_K_M-00002-of-00003.gguf", 3000),
  f("Q4_K_M/Big-Model-Q4_K_M-00001-of-00003.gguf", 3000),
  f("Q4_K_M/Big-Model-Q4_K_M-00003-of-00003.gguf", 1000),
  f("Q8_0/Big-Model-Q8_0-00001-of-00002.gguf"),
  f("README.md"),
];

describe("pickGguf", () => {
  it("prefers Q4_K_M and says what else is there", () => {
    const pick = pickGguf(QWEN_REPO);
    expect(pick.files.map((x) => x.path)).toEqual(["qwen2.5-0.5b-instruct-q4_k_m.gguf"]);
    expect(pick.quant).toBe("Q4_K_M");
    expect(pick.reason).toBe(
      "picked qwen2.5-0.5b-instruct-q4_k_m.gguf (Q4_K_M, the preferred 4-bit quant; also there: Q5_K_M, Q8_0, Q4_0, Q6_K, Q5_0, Q3_K_M, Q2_K, F16)",
    );
  });

  it("falls back along the preference order, skipping importance matrices", () => {
    const pick = pickGguf(BARTOWSKI_REPO);
    expect(pick.files.map((x) => x.path)).toEqual(["Llama-3.2-1B-Instruct-Q4_K_S.gguf"]);
    expect(pick.reason).toMatch(
      /^picked Llama-3\.2-1B-Instruct-Q4_K_S\.gguf \(Q4_K_S, the most preferred 4-bit quant here; also there: Q5_K_M, Q8_0, Q4_0, IQ4_XS/,
    );
    const noFour = BARTOWSKI_REPO.filter((x) => !/Q4|IQ4|Q5/.test(x.path));
    expect(pickGguf(noFour).quant).toBe("Q8_0");
    expect(pickGguf([f("x-BF16.gguf"), f("x-F16.gguf"), f("x-F32.gguf")]).reason).toBe(
      "picked x-F16.gguf (F16: no 4- or 8-bit quant in the repo; also there: BF16, F32)",
    );
  });

  it("skips vision projectors and groups split files", () => {
    expect(pickGguf(VISION_REPO).files.map((x) => x.path)).toEqual(["gemma-3-4b-it-Q8_0.gguf"]);
    const bf16 = pickGguf(VISION_REPO, { quant: "bf16" });
    expect(bf16.files.map((x) => x.path)).toEqual([
      "BF16/gemma-3-4b-it-BF16-00001-of-00002.gguf",
      "BF16/gemma-3-4b-it-BF16-00002-of-00002.gguf",
    ]);
    expect(bf16.reason).toBe(
      "picked BF16/gemma-3-4b-it-BF16-00001-of-00002.gguf and its 1 other part (BF16, as asked; also there: Q8_0)",
    );
    const split = pickGguf(SPLIT_REPO);
    expect(split.files.map((x) => x.path)).toEqual([
      "Q4_K_M/Big-Model-Q4_K_M-00001-of-00003.gguf",
      "Q4_K_M/Big-Model-Q4_K_M-00002-of-00003.gguf",
      "Q4_K_M/Big-Model-Q4_K_M-00003-of-00003.gguf",
    ]);
    expect(split.reason).toMatch(/and its 2 other parts \(Q4_K_M, the only GGUF model in the repo\)/);
  });

  it("answers a named file with its parts, and says what is missing", () => {
    const named = pickGguf(SPLIT_REPO, { path: "Q4_K_M/Big-Model-Q4_K_M-00001-of-00003.gguf" });
    expect(named.files).toHaveLength(3);
    expect(pickGguf(QWEN_REPO, { path: "qwen2.5-0.5b-instruct-q8_0.gguf" }).quant).toBe("Q8_0");
    expect(pickGguf(VISION_REPO, { path: "mmproj-model-f16.gguf" }).files.map((x) => x.path)).toEqual([
      "mmproj-model-f16.gguf",
    ]);
    const missing = () => pickGguf(SPLIT_REPO, { path: "Q8_0/Big-Model-Q8_0-00001-of-00002.gguf", repo: "o/big" });
    expect(missing).toThrow(HfNotFoundError);
    expect(missing).toThrow(
      "o/big has Q8_0/Big-Model-Q8_0-00001-of-00002.gguf but not all of its parts: missing Q8_0/Big-Model-Q8_0-00002-of-00002.gguf",
    );
    expect(() => pickGguf(QWEN_REPO, { path: "nope.gguf", repo: "Qwen/x" })).toThrow(
      /Qwen\/x has no file nope\.gguf; its GGUF models: qwen2\.5-0\.5b-instruct-fp16\.gguf, /,
    );
  });

  it("explains a repo without GGUF, or without the quant asked for", () => {
    const safetensors = [f("config.json"), f("model.safetensors"), f("tokenizer.json")];
    const err = (() => {
      try {
        pickGguf(safetensors, { repo: "meta/llama" });
      } catch (e) {
        return e as NoGgufError;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(NoGgufError);
    expect(err?.statusCode).toBe(404);
    expect(err?.message).toBe(
      "meta/llama holds no GGUF model file; it holds: config.json, model.safetensors, tokenizer.json. Choose a repo with GGUF files (often named <model>-GGUF) or convert the model to GGUF",
    );
    expect(() => pickGguf([f("mmproj-f16.gguf")])).toThrow(/only mmproj-f16\.gguf, which are not models on their own/);
    expect(() => pickGguf(QWEN_REPO, { quant: "IQ2_XS" })).toThrow(
      /has no IQ2_XS GGUF; it has Q4_K_M, Q5_K_M, Q8_0, Q4_0, /,
    );
  });

  it("reads the quant from common file names", () => {
    const cases: Array<[string, string | undefined]> = [
      ["qwen2.5-0.5b-instruct-q4_k_m.gguf", "Q4_K_M"],
      ["Llama-3.2-1B-Instruct-IQ4_XS.gguf", "IQ4_XS"],
      ["model-UD-Q4_K_XL-00001-of-00002.gguf", "Q4_K_XL"],
      ["Phi-3-mini-4k-instruct-q4.gguf", "Q4"],
      ["Phi-3-mini-4k-instruct-fp16.gguf", "F16"],
      ["tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf", "Q4_K_M"],
      ["gpt-oss-20b-mxfp4.gguf", "MXFP4"],
      ["BF16/x-BF16-00001-of-00002.gguf", "BF16"],
      ["stories260K.gguf", undefined],
      ["ggml-model-Q8_0.gguf", "Q8_0"],
    ];
    for (const [name, quant] of cases) expect(quantOfFileName(name), name).toBe(quant);
    expect(pickGguf([f("Phi-3-mini-4k-instruct-fp16.gguf"), f("Phi-3-mini-4k-instruct-q4.gguf")]).quant).toBe("Q4");
  });
});

describe("HfClient against the test hub (startHubServer)", () => {
  let hub: HubServer;
  let client: HfClient;
  let model60: string;
  const TOKEN = "hf_test_token";

  beforeAll(async () => {
    model60 = (await cachedGeneratedModel(60 * MiB)).path;
    hub = await startHubServer({
      token: TOKEN,
      repos: {
        "ggml-org/models": {
          files: {
            "tinyllamas/stories260K.gguf": { path: requireStoriesModel() },
            "README.md": { content: "# models\n" },
          },
        },
        "rbee-test/random-60m-GGUF": {
          files: { "random-60m-f16.gguf": { path: model60 }, "README.md": { content: "random weights\n" } },
        },
        "rbee-test/gated-GGUF": { gated: true, files: { "stories-q8_0.gguf": { path: requireStoriesModel() } } },
        "rbee-test/split-GGUF": {
          files: {
            "m-Q4_K_M-00001-of-00002.gguf": { content: Buffer.alloc(20_000, 1) },
            "m-Q4_K_M-00002-of-00002.gguf": { content: Buffer.alloc(20_000, 2) },
            "mmproj-m-f16.gguf": { content: Buffer.alloc(20_000, 3) },
            "config.json": { content: "{}" },
          },
        },
      },
    });
    client = new HfClient({ endpoint: hub.url });
  });
  afterAll(async () => {
    await hub?.close();
  });

  it("lists a repo's files, recursively, with sizes and the sha256 of LFS files", async () => {
    const files = await client.listFiles("ggml-org/models", "main");
    expect(files).toEqual([
      { path: "README.md", size: 9, lfs: false },
      { path: "tinyllamas/stories260K.gguf", size: 1_185_376, lfs: true, sha256: STORIES_SHA256 },
    ]);
    const split = await client.listFiles("rbee-test/split-GGUF");
    const pick = pickGguf(split, { repo: "rbee-test/split-GGUF" });
    expect(pick.files.map((x) => x.path)).toEqual(["m-Q4_K_M-00001-of-00002.gguf", "m-Q4_K_M-00002-of-00002.gguf"]);
    expect(pick.files[0]?.sha256).toBe(hub.sha256("rbee-test/split-GGUF", "m-Q4_K_M-00001-of-00002.gguf"));
  });

  it("resolves an LFS file to its CDN URL with size, sha256, ETag and commit, without following to the CDN", async () => {
    hub.stats.reset();
    const r = await client.resolveFile("ggml-org/models", "main", "tinyllamas/stories260K.gguf");
    expect(r.url.startsWith(`${hub.cdnUrl}/cdn/`)).toBe(true);
    expect(r).toMatchObject({
      size: 1_185_376,
      sha256: STORIES_SHA256,
      etag: STORIES_SHA256,
      commit: hub.revision("ggml-org/models"),
    });
    expect(hub.stats.requests.map((q) => [q.method, q.path])).toEqual([
      ["HEAD", "/ggml-org/models/resolve/main/tinyllamas/stories260K.gguf"],
    ]);
    const readme = await client.resolveFile("ggml-org/models", hub.revision("ggml-org/models"), "README.md");
    expect(readme.url).toBe(client.fileUrl("ggml-org/models", hub.revision("ggml-org/models"), "README.md"));
    expect(readme.size).toBe(9);
    expect(readme.sha256).toBeUndefined();
    expect(readme.etag).toMatch(/^[0-9a-f]{40}$/);
  });

  it("reads a remote GGUF header through the hub and its CDN, fetching a fraction of the file", async () => {
    hub.stats.reset();
    const resolveUrl = client.fileUrl("rbee-test/random-60m-GGUF", "main", "random-60m-f16.gguf");
    const { header, bytesRead } = await readGgufHeader({ url: resolveUrl, headers: client.authHeaders() });
    const info = inspectGguf(
      header,
      (await client.resolveFile("rbee-test/random-60m-GGUF", "main", "random-60m-f16.gguf")).size,
    );
    const local = inspectGguf((await readGgufHeader(model60)).header);
    expect(info).toEqual(local);
    expect(info.file_bytes).toBeGreaterThan(55 * MiB);
    expect(bytesRead).toBe(256 * 1024);
    expect(bytesRead).toBeLessThan(info.file_bytes / 200);
    expect(hub.stats.bytesServed("rbee-test/random-60m-GGUF/random-60m-f16.gguf")).toBe(bytesRead);
    // the hub's redirect, then one range request on the CDN
    expect(hub.stats.requests.filter((q) => q.path.startsWith("/cdn/")).map((q) => q.range)).toEqual([
      "bytes=0-262143",
    ]);
  });

  it("needs a token for a gated repo, and never sends it to the CDN", async () => {
    const err = await caught(client.resolveFile("rbee-test/gated-GGUF", "main", "stories-q8_0.gguf"));
    expect(err).toBeInstanceOf(HfAuthError);
    expect(err.statusCode).toBe(401);
    expect(err.message).toMatch(/this repo needs a token: set HF_TOKEN \(and accept its terms on the Hub/);
    // the file list is public, as on the Hub
    expect(await client.listFiles("rbee-test/gated-GGUF")).toHaveLength(1);

    const wrong = await caught(
      new HfClient({ endpoint: hub.url, token: "hf_wrong" }).resolveFile(
        "rbee-test/gated-GGUF",
        "main",
        "stories-q8_0.gguf",
      ),
    );
    expect(wrong.message).toMatch(/the account of HF_TOKEN has not been granted access: accept its terms/);

    hub.stats.reset();
    const authed = new HfClient({ endpoint: hub.url, token: TOKEN });
    const url = authed.fileUrl("rbee-test/gated-GGUF", "main", "stories-q8_0.gguf");
    const { header } = await readGgufHeader({ url, headers: authed.authHeaders() });
    expect(header.metadata.get("general.architecture")).toBe("llama");
    const requests = hub.stats.requests.map((q) => [q.path.startsWith("/cdn/") ? "cdn" : "hub", q.authorized]);
    expect(requests).toEqual([
      ["hub", true],
      ["cdn", false],
    ]);
  });

  it("tells a missing repo from a missing revision and a missing file", async () => {
    const repo = await caught(client.listFiles("nobody/nothing", "main"));
    expect(repo).toBeInstanceOf(HfNotFoundError);
    expect((repo as HfNotFoundError).what).toBe("repo");
    expect(repo.message).toBe(
      `Hugging Face (${hub.url}) has no model repo nobody/nothing; if it is private, set HF_TOKEN`,
    );
    const rev = await caught(client.listFiles("ggml-org/models", "v9"));
    expect((rev as HfNotFoundError).what).toBe("revision");
    expect(rev.message).toMatch(/ggml-org\/models has no revision 'v9'/);
    const file = await caught(client.resolveFile("ggml-org/models", "main", "tinyllamas/stories15M.gguf"));
    expect((file as HfNotFoundError).what).toBe("file");
    expect(file.statusCode).toBe(404);
    expect(file.message).toBe("ggml-org/models has no file 'tinyllamas/stories15M.gguf' at revision main");
    await expect(client.resolveFile("nobody/nothing", "main", "x.gguf")).rejects.toMatchObject({ what: "repo" });
  });

  it("says the Hub is unavailable (retryable) for 429, 5xx and no answer, naming HF_ENDPOINT", async () => {
    hub.faults.status = { code: 503, times: 1 };
    const busy = await caught(client.listFiles("ggml-org/models"));
    expect(busy).toBeInstanceOf(HfUnavailableError);
    expect(busy.retryable).toBe(true);
    expect(busy.message).toMatch(
      /answered 503 for ggml-org\/models \(Service Unavailable\); try again later, or set HF_ENDPOINT/,
    );
    hub.faults.status = { code: 429, times: 1, retryAfter: 3 };
    expect(await caught(client.resolveFile("ggml-org/models", "main", "README.md"))).toBeInstanceOf(HfUnavailableError);
    hub.faults.status = { code: 403, times: 1 };
    const forbidden = await caught(client.listFiles("ggml-org/models"));
    expect(forbidden).toBeInstanceOf(HfAuthError);
    expect(forbidden.statusCode).toBe(403);

    const down = await startHubServer({ repos: {} });
    const endpoint = down.url;
    await down.close();
    const err = await caught(new HfClient({ endpoint }).listFiles("ggml-org/models"));
    expect(err).toBeInstanceOf(HfUnavailableError);
    expect(err.message).toMatch(
      new RegExp(
        `^cannot reach Hugging Face at ${endpoint} \\(HF_ENDPOINT\\): ECONNREFUSED; check the network, or set HF_ENDPOINT`,
      ),
    );
  });

  it("refuses invalid names before asking the Hub", () => {
    expect(() => client.fileUrl("ggml-org/models", "main", "../../etc/passwd")).toThrow(/'\.\.' part/);
    expect(() => client.fileUrl("not a repo", "main", "x.gguf")).toThrow(/owner\/name/);
    expect(client.fileUrl("o/r", "refs/pr/1", "dir/a b.gguf")).toBe(
      `${hub.url}/o/r/resolve/refs%2Fpr%2F1/dir/a%20b.gguf`,
    );
  });
});

/**
 * A fixture that replays two behaviours of the Hub the test hub does not have: tree listings in
 * pages (`Link: <…>; rel="next"`), and a renamed repo whose old name answers 307 to the new one.
 */
describe("HfClient pagination and renamed repos (a fixture replaying the Hub's Link pages and 307s)", () => {
  let server: Server;
  let endpoint: string;
  const seen: string[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://x");
      seen.push(`${req.method} ${url.pathname}${url.search} ${req.headers.authorization ?? "-"}`);
      if (url.pathname.startsWith("/api/models/old-org/")) {
        res.writeHead(307, { location: url.pathname.replace("old-org", "new-org") + url.search }).end();
        return;
      }
      if (url.pathname === "/api/models/new-org/many/tree/main") {
        const page = Number(url.searchParams.get("cursor") ?? "0");
        const entries = Array.from({ length: 3 }, (_, i) => ({
          type: "file",
          path: `f${page * 3 + i}.gguf`,
          size: 10,
          oid: "0".repeat(40),
          lfs: { oid: String(page).repeat(64), size: 10 + page, pointerSize: 130 },
        }));
        entries.push({ type: "directory", path: `dir${page}`, size: 0, oid: "1".repeat(40) } as never);
        const headers: Record<string, string> = { "content-type": "application/json" };
        if (page < 2)
          headers.link = `<${endpoint}/api/models/new-org/many/tree/main?recursive=true&cursor=${page + 1}>; rel="next"`;
        res.writeHead(200, headers).end(JSON.stringify(entries));
        return;
      }
      if (url.pathname === "/old-org/many/resolve/main/f0.gguf") {
        res.writeHead(307, { location: "/new-org/many/resolve/main/f0.gguf" }).end();
        return;
      }
      if (url.pathname === "/new-org/many/resolve/main/f0.gguf") {
        res
          .writeHead(302, {
            location: "https://cdn.example/blob?sig=1",
            "x-linked-size": "10",
            "x-linked-etag": `"${"0".repeat(64)}"`,
            "x-repo-commit": "c".repeat(40),
          })
          .end();
        return;
      }
      res.writeHead(404, { "x-error-code": "RepoNotFound" }).end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it("follows Link pages and a renamed repo's redirect, keeping the token on the Hub", async () => {
    const client = new HfClient({ endpoint, token: "hf_x" });
    const files = await client.listFiles("old-org/many");
    expect(files.map((x) => x.path)).toEqual([
      "f0.gguf",
      "f1.gguf",
      "f2.gguf",
      "f3.gguf",
      "f4.gguf",
      "f5.gguf",
      "f6.gguf",
      "f7.gguf",
      "f8.gguf",
    ]);
    expect(files[4]).toEqual({ path: "f4.gguf", size: 11, lfs: true, sha256: "1".repeat(64) });
    expect(seen.every((s) => s.endsWith("Bearer hf_x"))).toBe(true);

    const r = await client.resolveFile("old-org/many", "main", "f0.gguf");
    expect(r).toEqual({
      url: "https://cdn.example/blob?sig=1",
      size: 10,
      sha256: "0".repeat(64),
      etag: "0".repeat(64),
      commit: "c".repeat(40),
    });
  });
});
