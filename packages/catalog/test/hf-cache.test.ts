import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { findInHfCache } from "../src/hf/hf-cache.js";
import { hfEndpoint, hfHome, hfHubCache, hfToken } from "../src/hf/hf-env.js";

const COMMIT = "a".repeat(40);
const OTHER = "b".repeat(40);

/** Lays out a repo in the hub cache as huggingface_hub does: blobs, refs, snapshots with relative symlinks. */
async function cachedRepo(hub: string, repo: string, files: Record<string, string>, commit = COMMIT, ref = "main") {
  const dir = join(hub, `models--${repo.replace("/", "--")}`);
  await mkdir(join(dir, "blobs"), { recursive: true });
  await mkdir(join(dir, "refs", ...ref.split("/").slice(0, -1)), { recursive: true });
  await writeFile(join(dir, "refs", ...ref.split("/")), commit);
  let n = 0;
  for (const [path, content] of Object.entries(files)) {
    const blob = `${(++n).toString(16).padStart(2, "0")}${"c".repeat(62)}`;
    await writeFile(join(dir, "blobs", blob), content);
    const link = join(dir, "snapshots", commit, ...path.split("/"));
    await mkdir(join(link, ".."), { recursive: true });
    const depth = path.split("/").length + 1; // snapshots/<commit>/<dirs…>/file → ../../(../…)blobs
    await symlink(`${"../".repeat(depth)}blobs/${blob}`, link);
  }
  return dir;
}

describe("findInHfCache", () => {
  let root: string;
  let env: NodeJS.ProcessEnv;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), "rbee-hf-cache-"));
    env = { HF_HOME: join(root, "hf") };
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("finds a file through refs/<revision> and the snapshot's symlink, and checks its size", async () => {
    const hub = join(root, "hf", "hub");
    await cachedRepo(hub, "ggml-org/models", { "tinyllamas/stories260K.gguf": "GGUF-stories", "README.md": "hi" });
    const found = findInHfCache("ggml-org/models", "main", "tinyllamas/stories260K.gguf", env);
    expect(found).toBe(join(hub, "models--ggml-org--models", "snapshots", COMMIT, "tinyllamas", "stories260K.gguf"));
    expect(findInHfCache("ggml-org/models", "main", "tinyllamas/stories260K.gguf", env, 12)).toBe(found);
    expect(findInHfCache("ggml-org/models", "main", "tinyllamas/stories260K.gguf", env, 13)).toBeUndefined();
    // a commit is looked up directly
    expect(findInHfCache("ggml-org/models", COMMIT, "README.md", env)).toBe(
      join(hub, "models--ggml-org--models", "snapshots", COMMIT, "README.md"),
    );
  });

  it("answers undefined for what is not there", async () => {
    const hub = join(root, "hf", "hub");
    const dir = await cachedRepo(hub, "o/r", { "m.gguf": "GGUF" });
    expect(findInHfCache("o/r", "main", "other.gguf", env)).toBeUndefined();
    expect(findInHfCache("o/r", "dev", "m.gguf", env)).toBeUndefined(); // no refs/dev
    expect(findInHfCache("o/r", OTHER, "m.gguf", env)).toBeUndefined(); // no such snapshot
    expect(findInHfCache("x/y", "main", "m.gguf", env)).toBeUndefined();
    expect(findInHfCache("o/r", "main", "m.gguf", { HF_HOME: join(root, "elsewhere") })).toBeUndefined();
    // a dangling symlink (the blob was deleted) and a directory are not files
    await rm(join(dir, "blobs"), { recursive: true });
    expect(findInHfCache("o/r", "main", "m.gguf", env)).toBeUndefined();
    await mkdir(join(dir, "snapshots", COMMIT, "d.gguf"));
    expect(findInHfCache("o/r", "main", "d.gguf", env)).toBeUndefined();
  });

  it("reads refs of tags and pull requests, and real files where there are no symlinks", async () => {
    const hub = join(root, "hf", "hub");
    await cachedRepo(hub, "o/r", { "m.gguf": "GGUF" }, OTHER, "refs/pr/1");
    expect(findInHfCache("o/r", "refs/pr/1", "m.gguf", env)).toBe(
      join(hub, "models--o--r", "snapshots", OTHER, "m.gguf"),
    );
    await mkdir(join(hub, "models--o--r", "snapshots", COMMIT), { recursive: true });
    await writeFile(join(hub, "models--o--r", "refs", "main"), `${COMMIT}\n`);
    await writeFile(join(hub, "models--o--r", "snapshots", COMMIT, "plain.gguf"), "GGUF");
    expect(findInHfCache("o/r", "main", "plain.gguf", env)).toBe(
      join(hub, "models--o--r", "snapshots", COMMIT, "plain.gguf"),
    );
  });

  it("never looks outside the snapshot for traversal attempts or a ref that is not a commit", async () => {
    const hub = join(root, "hf", "hub");
    const dir = await cachedRepo(hub, "o/r", { "m.gguf": "GGUF" });
    await writeFile(join(root, "secret.gguf"), "GGUF");
    expect(findInHfCache("o/r", "main", "../../../../secret.gguf", env)).toBeUndefined();
    expect(findInHfCache("o/r", "main", "/etc/passwd", env)).toBeUndefined();
    expect(findInHfCache("o/r", "../../..", "secret.gguf", env)).toBeUndefined();
    expect(findInHfCache("../o/r", "main", "m.gguf", env)).toBeUndefined();
    await writeFile(join(dir, "refs", "evil"), "../../../../..");
    expect(findInHfCache("o/r", "evil", "secret.gguf", env)).toBeUndefined();
  });

  it("finds the cache from HF_HUB_CACHE, HF_HOME, XDG_CACHE_HOME or the home directory", () => {
    expect(hfHubCache({ HF_HUB_CACHE: "/x/hub", HF_HOME: "/y" })).toBe("/x/hub");
    expect(hfHubCache({ HUGGINGFACE_HUB_CACHE: "/old/hub" })).toBe("/old/hub");
    expect(hfHubCache({ HF_HOME: "/y" })).toBe("/y/hub");
    expect(hfHubCache({ XDG_CACHE_HOME: "/xdg", HOME: "/home/me" })).toBe("/xdg/huggingface/hub");
    expect(hfHome({ HOME: "/home/me" })).toBe("/home/me/.cache/huggingface");
  });
});

describe("hfEndpoint and hfToken", () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), "rbee-hf-env-"));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("reads HF_ENDPOINT without a trailing slash, and refuses a bad one", () => {
    expect(hfEndpoint({})).toBe("https://huggingface.co");
    expect(hfEndpoint({ HF_ENDPOINT: "https://hf-mirror.com/" })).toBe("https://hf-mirror.com");
    expect(hfEndpoint({ HF_ENDPOINT: "  " })).toBe("https://huggingface.co");
    expect(() => hfEndpoint({ HF_ENDPOINT: "hf-mirror.com" })).toThrow(/HF_ENDPOINT='hf-mirror\.com' is not a URL/);
    expect(() => hfEndpoint({ HF_ENDPOINT: "ftp://x" })).toThrow(/http or https/);
  });

  it("reads HF_TOKEN, HUGGING_FACE_HUB_TOKEN, then the token file", async () => {
    await mkdir(join(root, "hf"));
    await writeFile(join(root, "hf", "token"), "hf_fromfile\n");
    expect(hfToken({ HF_TOKEN: "hf_env", HUGGING_FACE_HUB_TOKEN: "hf_old", HF_HOME: join(root, "hf") })).toBe("hf_env");
    expect(hfToken({ HUGGING_FACE_HUB_TOKEN: "hf_old", HF_HOME: join(root, "hf") })).toBe("hf_old");
    expect(hfToken({ HF_HOME: join(root, "hf") })).toBe("hf_fromfile");
    expect(hfToken({ HOME: root, XDG_CACHE_HOME: join(root, "none") })).toBeUndefined();
    await writeFile(join(root, "elsewhere"), "hf_path");
    expect(hfToken({ HF_TOKEN_PATH: join(root, "elsewhere") })).toBe("hf_path");
  });
});
