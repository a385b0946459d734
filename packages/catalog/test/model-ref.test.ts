import { type RbeeError, ValidationError } from "@rbee/contract";
import { describe, expect, it } from "vitest";
import { findShortName, SHORT_MODEL_NAMES } from "../src/hf/short-names.js";
import { isModelId, modelDirOf } from "../src/model-id.js";
import { catalogIdFor, formatModelRef, type ModelRef, parseModelRef } from "../src/model-ref.js";

const opts = { cwd: "/work/here", home: "/home/me" };
const parse = (ref: string) => parseModelRef(ref, opts);

function refused(ref: string): ValidationError {
  let err: unknown;
  try {
    parse(ref);
  } catch (e) {
    err = e;
  }
  expect(err, ref).toBeInstanceOf(ValidationError);
  expect((err as RbeeError).statusCode).toBe(400);
  return err as ValidationError;
}

describe("parseModelRef", () => {
  it("reads owner/repo:path and owner/repo@rev:path", () => {
    expect(parse("ggml-org/models:tinyllamas/stories260K.gguf")).toEqual({
      kind: "hf",
      repo: "ggml-org/models",
      revision: "main",
      path: "tinyllamas/stories260K.gguf",
    });
    expect(parse("Qwen/Qwen2.5-0.5B-Instruct-GGUF@v1.0:qwen2.5-0.5b-instruct-q4_k_m.gguf")).toEqual({
      kind: "hf",
      repo: "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
      revision: "v1.0",
      path: "qwen2.5-0.5b-instruct-q4_k_m.gguf",
    });
    expect(parse("owner/repo@refs/pr/12:dir/model-00001-of-00002.gguf")).toMatchObject({
      revision: "refs/pr/12",
      path: "dir/model-00001-of-00002.gguf",
    });
    expect(parse("  owner/repo:model.GGUF  ")).toMatchObject({ path: "model.GGUF" });
  });

  it("reads owner/repo, owner/repo@rev, and owner/repo:QUANT", () => {
    expect(parse("Qwen/Qwen2.5-1.5B-Instruct-GGUF")).toEqual({
      kind: "hf",
      repo: "Qwen/Qwen2.5-1.5B-Instruct-GGUF",
      revision: "main",
    });
    expect(parse("owner/repo@0123456789abcdef0123456789abcdef01234567")).toEqual({
      kind: "hf",
      repo: "owner/repo",
      revision: "0123456789abcdef0123456789abcdef01234567",
    });
    expect(parse("bartowski/Llama-3.2-1B-Instruct-GGUF:q8_0")).toEqual({
      kind: "hf",
      repo: "bartowski/Llama-3.2-1B-Instruct-GGUF",
      revision: "main",
      quant: "Q8_0",
    });
  });

  it("reads Ollama's hf.co/owner/repo:QUANT", () => {
    expect(parse("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M")).toEqual({
      kind: "hf",
      repo: "bartowski/Llama-3.2-1B-Instruct-GGUF",
      revision: "main",
      quant: "Q4_K_M",
    });
    expect(parse("huggingface.co/o/r")).toEqual({ kind: "hf", repo: "o/r", revision: "main" });
  });

  it("reads hf:// and huggingface.co URLs", () => {
    const file = { kind: "hf", repo: "ggml-org/models", path: "tinyllamas/stories260K.gguf" };
    expect(parse("hf://ggml-org/models/tinyllamas/stories260K.gguf")).toEqual({ ...file, revision: "main" });
    expect(parse("hf://ggml-org/models/tinyllamas/stories260K.gguf@v2")).toEqual({ ...file, revision: "v2" });
    expect(parse("hf://ggml-org/models@v2/tinyllamas/stories260K.gguf")).toEqual({ ...file, revision: "v2" });
    expect(parse("hf://ggml-org/models@refs%2Fpr%2F3/tinyllamas/stories260K.gguf")).toEqual({
      ...file,
      revision: "refs/pr/3",
    });
    expect(parse("hf://ggml-org/models")).toEqual({ kind: "hf", repo: "ggml-org/models", revision: "main" });
    expect(parse("hf://models/ggml-org/models@dev")).toEqual({ kind: "hf", repo: "ggml-org/models", revision: "dev" });
    expect(
      parse("https://huggingface.co/ggml-org/models/resolve/main/tinyllamas/stories260K.gguf?download=true"),
    ).toEqual({
      ...file,
      revision: "main",
    });
    expect(parse("https://huggingface.co/ggml-org/models/blob/v2/tinyllamas/stories260K.gguf")).toEqual({
      ...file,
      revision: "v2",
    });
    expect(parse("https://hf.co/ggml-org/models/tree/v2")).toEqual({
      kind: "hf",
      repo: "ggml-org/models",
      revision: "v2",
    });
    expect(parse("https://huggingface.co/ggml-org/models")).toEqual({
      kind: "hf",
      repo: "ggml-org/models",
      revision: "main",
    });
    expect(parse("https://huggingface.co/o/r/resolve/main/a%20b.gguf")).toMatchObject({ path: "a b.gguf" });
    // a mirror at HF_ENDPOINT, even under a path
    expect(
      parseModelRef("https://mirror.example/hf/o/r/resolve/main/m.gguf", { endpoint: "https://mirror.example/hf/" }),
    ).toEqual({ kind: "hf", repo: "o/r", revision: "main", path: "m.gguf" });
  });

  it("reads local paths: absolute, ./, ../, ~/ and bare .gguf names", () => {
    expect(parse("/models/x.gguf")).toEqual({ kind: "local", path: "/models/x.gguf" });
    expect(parse("/models/../models/x.gguf")).toEqual({ kind: "local", path: "/models/x.gguf" });
    expect(parse("./x.gguf")).toEqual({ kind: "local", path: "/work/here/x.gguf" });
    expect(parse("../x.gguf")).toEqual({ kind: "local", path: "/work/x.gguf" });
    expect(parse("~/models/x.gguf")).toEqual({ kind: "local", path: "/home/me/models/x.gguf" });
    expect(parse("x.gguf")).toEqual({ kind: "local", path: "/work/here/x.gguf" });
    expect(parse("models/x.gguf")).toEqual({ kind: "local", path: "/work/here/models/x.gguf" });
  });

  it("reads catalog ids (any case) and short names", () => {
    expect(parse("stories260k")).toEqual({ kind: "id", id: "stories260k" });
    expect(parse("Stories260K")).toEqual({ kind: "id", id: "stories260k" });
    expect(parse("ggml-org--models--tinyllamas--stories260k")).toEqual({
      kind: "id",
      id: "ggml-org--models--tinyllamas--stories260k",
    });
    expect(parse("qwen2.5-0.5b")).toEqual({
      kind: "hf",
      repo: "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
      revision: "main",
      path: "qwen2.5-0.5b-instruct-q4_k_m.gguf",
      shortName: "qwen2.5-0.5b",
    });
    expect(parse("TinyStories-260K")).toMatchObject({
      repo: "ggml-org/models-moved",
      path: "tinyllamas/stories260K.gguf",
    });
  });

  it("every short name expands to a valid file reference and is not a file-derived id", () => {
    expect(SHORT_MODEL_NAMES.length).toBeGreaterThanOrEqual(5);
    expect(SHORT_MODEL_NAMES.length).toBeLessThanOrEqual(10);
    for (const s of SHORT_MODEL_NAMES) {
      const ref = parse(s.name);
      expect(ref).toMatchObject({ kind: "hf", repo: s.repo, path: s.path });
      expect(parse(`${s.repo}:${s.path}`)).toMatchObject({ kind: "hf", repo: s.repo, path: s.path });
      expect(s.path).toMatch(/\.gguf$/);
      expect(findShortName(s.name.toUpperCase())).toBe(s);
      expect(s.verified.length).toBeGreaterThan(20);
    }
  });

  it("refuses traversal, absolute and backslash paths in a repo", () => {
    for (const ref of [
      "owner/repo:../../etc/passwd.gguf",
      "owner/repo:a/../../b.gguf",
      "owner/repo:/etc/model.gguf",
      "owner/repo:dir\\model.gguf",
      "owner/repo:./model.gguf",
      "owner/repo:dir//model.gguf",
      "hf://owner/repo/../../etc/x.gguf",
      "https://huggingface.co/owner/repo/resolve/main/..%2F..%2Fetc%2Fx.gguf",
    ]) {
      expect(refused(ref).message, ref).toMatch(/'\.\.'|absolute|backslash|empty, '\.' or '\.\.' part/);
    }
    expect(refused("owner/repo:../../etc/passwd").message).toMatch(/not a \.gguf file/);
  });

  it("refuses invalid repos, revisions and references, saying which forms are accepted", () => {
    const bad = [
      ["own er/repo:m.gguf", /not a valid repo owner or name/],
      ["owner/re--po", /contains "--" or "\.\."/],
      ["owner/repo.", /not a valid repo owner or name/],
      ["a/b/c", /not owner\/name/],
      ["owner/repo@:m.gguf", /revision is empty/],
      ["owner/repo@../main:m.gguf", /contains '\.\.'/],
      ["owner/repo@ma in:m.gguf", /may only hold/],
      ["owner/repo:", /nothing follows the ':'/],
      ["hf://datasets/o/r", /only model repos/],
      ["https://example.com/o/r/resolve/main/m.gguf", /only Hugging Face URLs/],
      ["https://huggingface.co/o/r/commits/main", /\/resolve\/ or \/blob\//],
      ["not a ref", /neither a short name nor a catalog id/],
      ["-rf", /neither a short name nor a catalog id/],
      ["", /empty/],
      ["owner/repo:m.gguf\u0000", /control characters/],
    ] as const;
    for (const [ref, why] of bad) {
      const err = refused(ref);
      expect(err.message, ref).toMatch(why);
      expect(err.message).toMatch(/use owner\/repo, owner\/repo:path\/file\.gguf/);
      expect(err.param).toBe("model");
    }
  });
});

describe("catalogIdFor", () => {
  it("derives a readable id from the repo and file", () => {
    expect(catalogIdFor(parse("ggml-org/models:tinyllamas/stories260K.gguf"))).toBe(
      "ggml-org--models--tinyllamas--stories260k",
    );
    expect(catalogIdFor(parse("Qwen/Qwen2.5-0.5B-Instruct-GGUF:qwen2.5-0.5b-instruct-q4_k_m.gguf"))).toBe(
      "qwen--qwen2.5-0.5b-instruct-gguf--qwen2.5-0.5b-instruct-q4_k_m",
    );
    expect(catalogIdFor(parse("owner/repo@v1.0:m.gguf"))).toBe("owner--repo--m--rev-v1.0");
    expect(catalogIdFor(parse("owner/repo@0123456789abcdef0123456789abcdef01234567:m.gguf"))).toBe(
      "owner--repo--m--rev-0123456789ab",
    );
    expect(catalogIdFor(parse("stories260k"))).toBe("stories260k");
    expect(catalogIdFor(parse("/models/Llama 3 (Q4).gguf"))).toBe("llama-3-q4");
  });

  it("gives every part of a split model one id, and a repo the picked file's id", () => {
    const first = catalogIdFor(parse("o/r:Q4_K_M/model-Q4_K_M-00001-of-00003.gguf"));
    expect(first).toBe("o--r--q4_k_m--model-q4_k_m");
    expect(catalogIdFor(parse("o/r:Q4_K_M/model-Q4_K_M-00002-of-00003.gguf"))).toBe(first);
    const repo = parse("Qwen/Qwen2.5-0.5B-Instruct-GGUF");
    expect(catalogIdFor(repo)).toBe("qwen--qwen2.5-0.5b-instruct-gguf");
    expect(catalogIdFor(repo, "qwen2.5-0.5b-instruct-q4_k_m.gguf")).toBe(
      catalogIdFor(parse("Qwen/Qwen2.5-0.5B-Instruct-GGUF:qwen2.5-0.5b-instruct-q4_k_m.gguf")),
    );
    expect(catalogIdFor(parse("o/r:Q8_0"))).toBe("o--r--q8_0");
    expect(catalogIdFor(parse("qwen2.5-0.5b"))).toBe(
      catalogIdFor(parse("Qwen/Qwen2.5-0.5B-Instruct-GGUF:qwen2.5-0.5b-instruct-q4_k_m.gguf")),
    );
  });

  it("always answers an id that stays inside the models directory", () => {
    const refs: ModelRef[] = [
      parse("o/r:a/b/c/d.gguf"),
      parse("o/r:weird name (1) ~ ü.gguf"),
      parse("_o_/_r_:_x_.gguf"),
      parse(`o/r:${"deep/".repeat(40)}model.gguf`),
      parse(`${"a".repeat(96)}/${"b".repeat(96)}:${"c".repeat(200)}.gguf`),
      { kind: "hf", repo: "o/r", revision: "main", path: "..gguf" },
    ];
    const ids = refs.map((r) => catalogIdFor(r));
    for (const id of ids) {
      expect(isModelId(id), id).toBe(true);
      expect(id.length).toBeLessThanOrEqual(96);
      expect(modelDirOf("/cache/models", id)).toBe(`/cache/models/${id}`);
    }
    expect(new Set(ids).size).toBe(ids.length);
    // long ids end with a hash of the whole reference
    expect(ids[4]).toMatch(/-[0-9a-f]{12}$/);
  });
});

describe("formatModelRef", () => {
  it("writes references in canonical form", () => {
    expect(formatModelRef(parse("hf://o/r/m.gguf@v1"))).toBe("o/r@v1:m.gguf");
    expect(formatModelRef(parse("o/r"))).toBe("o/r");
    expect(formatModelRef(parse("o/r:q4_k_m"))).toBe("o/r:Q4_K_M");
    expect(formatModelRef(parse("./x.gguf"))).toBe("/work/here/x.gguf");
    expect(formatModelRef(parse("Stories260K"))).toBe("stories260k");
  });
});
