import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ArtifactMetadata, ModelNotFoundError, RbeeError, ValidationError } from "@rbee/contract";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { toHiveModel } from "../src/catalog-entry.js";
import { ModelCatalog, ModelIdTakenError, RESOLVE_HINT } from "../src/model-catalog.js";
import { modelDirOf, modelIdFromFileName } from "../src/model-id.js";

/** A file that passes the catalog's check: the GGUF magic and some bytes (no model needs to load here). */
async function ggufFile(path: string, bytes = 64): Promise<string> {
  await mkdir(join(path, ".."), { recursive: true });
  await writeFile(path, Buffer.concat([Buffer.from("GGUF"), Buffer.alloc(bytes - 4, 7)]));
  return path;
}

async function caught(p: Promise<unknown>): Promise<RbeeError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RbeeError);
  return err as RbeeError;
}

describe("ModelCatalog", () => {
  let tmp: string;
  let models: string;
  let catalog: ModelCatalog;

  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), "rbee-catalog-"));
    models = join(tmp, "cache", "models");
    catalog = new ModelCatalog(models);
  });
  afterEach(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it("lists nothing when the models directory does not exist yet", async () => {
    expect(await catalog.list()).toEqual([]);
  });

  it("registers a local GGUF file in place, with metadata.json in the catalog format", async () => {
    const file = await ggufFile(join(tmp, "files", "stories260K.gguf"), 100);
    const entry = await catalog.registerLocalFile(file);
    expect(entry.id).toBe("stories260k");
    expect(entry.path).toBe(file);
    expect(entry.dir).toBe(join(models, "stories260k"));
    const metadata = ArtifactMetadata.parse(JSON.parse(await readFile(join(entry.dir, "metadata.json"), "utf8")));
    expect(metadata.artifact).toMatchObject({
      id: "stories260k",
      name: "stories260K",
      size_bytes: 100,
      source_url: `file://${file}`,
      status: "Available",
      kind: "model",
      files: [{ path: file, size_bytes: 100 }],
    });
    // the file is used in place, not copied; no temporary file is left behind
    expect(await readdir(entry.dir)).toEqual(["metadata.json"]);
    expect(toHiveModel(entry)).toEqual({
      id: "stories260k",
      name: "stories260K",
      size_bytes: 100,
      status: "Available",
      path: file,
      source_url: `file://${file}`,
    });
    expect((await catalog.list()).map((e) => e.id)).toEqual(["stories260k"]);
    expect((await catalog.get("stories260k"))?.path).toBe(file);
  });

  it("registering the same file twice gives the same id and one entry", async () => {
    const file = await ggufFile(join(tmp, "a", "Model.gguf"));
    const first = await catalog.registerLocalFile(file);
    const second = await catalog.registerLocalFile(file);
    const [third, fourth] = await Promise.all([catalog.registerLocalFile(file), catalog.resolve(file)]);
    expect([second.id, third.id, fourth.id]).toEqual([first.id, first.id, first.id]);
    expect((await catalog.list()).map((e) => e.id)).toEqual(["model"]);
  });

  it("a file of the same name at a different path gets a different, stable id", async () => {
    const a = await ggufFile(join(tmp, "a", "tiny.gguf"));
    const b = await ggufFile(join(tmp, "b", "tiny.gguf"));
    const ea = await catalog.registerLocalFile(a);
    const [eb, eb2] = await Promise.all([catalog.registerLocalFile(b), catalog.registerLocalFile(b)]);
    expect(ea.id).toBe("tiny");
    expect(eb.id).toMatch(/^tiny-[0-9a-f]{6}$/);
    expect(eb2.id).toBe(eb.id);
    expect(eb.path).toBe(b);
    expect((await catalog.registerLocalFile(a)).id).toBe("tiny");
    expect((await catalog.list()).map((e) => e.id).sort()).toEqual([eb.id, "tiny"].sort());
  });

  it("derives safe ids from file names", () => {
    expect(modelIdFromFileName("stories260K.gguf")).toBe("stories260k");
    expect(modelIdFromFileName("/x/Llama 3.1 8B (Q4_K_M).GGUF")).toBe("llama-3.1-8b-q4_k_m");
    expect(modelIdFromFileName("..hidden.gguf")).toBe("hidden");
    expect(modelIdFromFileName("ünïcødé.gguf")).toBe("n-c-d");
    expect(modelIdFromFileName("!!!.gguf")).toBe("model");
    expect(modelIdFromFileName(`${"a".repeat(300)}.gguf`)).toHaveLength(96);
  });

  it("takes a given id, and refuses one that another file holds", async () => {
    const a = await ggufFile(join(tmp, "a.gguf"));
    const b = await ggufFile(join(tmp, "b.gguf"));
    expect((await catalog.registerLocalFile(a, { id: "mine", name: "My model" })).artifact.name).toBe("My model");
    expect((await catalog.registerLocalFile(a, { id: "mine" })).id).toBe("mine");
    const err = await caught(catalog.registerLocalFile(b, { id: "mine" }));
    expect(err).toBeInstanceOf(ModelIdTakenError);
    expect(err.statusCode).toBe(409);
    expect((await caught(catalog.registerLocalFile(b, { id: "../escape" }))).statusCode).toBe(400);
  });

  it("refuses what is not a GGUF file on this machine, saying why", async () => {
    const text = join(tmp, "notes.gguf");
    await writeFile(text, "hello, not a model");
    const notGguf = await caught(catalog.registerLocalFile(text));
    expect(notGguf).toBeInstanceOf(ValidationError);
    expect(notGguf.message).toMatch(/not a GGUF model.*"GGUF"/);

    const missing = await caught(catalog.registerLocalFile(join(tmp, "nope.gguf")));
    expect(missing).toBeInstanceOf(ModelNotFoundError);
    expect(missing.message).toMatch(/no file at that path/);

    const dir = await caught(catalog.registerLocalFile(tmp));
    expect(dir).toBeInstanceOf(ValidationError);
    expect(dir.message).toMatch(/is not a file/);

    const relative = await caught(catalog.registerLocalFile("models/x.gguf"));
    expect(relative).toBeInstanceOf(ValidationError);
    expect(relative.message).toMatch(/not an absolute path/);

    const empty = join(tmp, "empty.gguf");
    await writeFile(empty, "");
    expect((await caught(catalog.registerLocalFile(empty))).statusCode).toBe(400);
    expect(await catalog.list()).toEqual([]);
  });

  it("lists broken entries as Failed with what is wrong, and never throws", async () => {
    const good = await catalog.registerLocalFile(await ggufFile(join(tmp, "good.gguf")));
    await mkdir(join(models, "no-metadata"), { recursive: true });
    await mkdir(join(models, "truncated"), { recursive: true });
    await writeFile(join(models, "truncated", "metadata.json"), '{"artifact": {"id": "trunc');
    await mkdir(join(models, "invalid"), { recursive: true });
    await writeFile(join(models, "invalid", "metadata.json"), JSON.stringify({ artifact: { id: "invalid" } }));
    await mkdir(join(models, "elsewhere"), { recursive: true });
    await writeFile(
      join(models, "elsewhere", "metadata.json"),
      JSON.stringify({ ...JSON.parse(await readFile(join(good.dir, "metadata.json"), "utf8")) }),
    );
    await mkdir(join(models, "climbs"), { recursive: true });
    const climbing = JSON.parse(await readFile(join(good.dir, "metadata.json"), "utf8"));
    climbing.artifact.id = "climbs";
    climbing.artifact.files = [{ path: "../../../etc/passwd", size_bytes: 1 }];
    await writeFile(join(models, "climbs", "metadata.json"), JSON.stringify(climbing));
    await writeFile(join(models, "a-stray-file"), "not a directory");
    await mkdir(join(models, "Not An Id"), { recursive: true });

    const entries = await catalog.list();
    const byId = Object.fromEntries(entries.map((e) => [e.id, e.artifact]));
    expect(Object.keys(byId)).toEqual(["climbs", "elsewhere", "good", "invalid", "no-metadata", "truncated"]);
    expect(byId.good?.status).toBe("Available");
    expect(byId["no-metadata"]).toMatchObject({ status: "Failed", error: "metadata.json is missing" });
    expect(byId.truncated?.status).toBe("Failed");
    expect(byId.truncated?.error).toMatch(/not valid JSON/);
    expect(byId.invalid?.status).toBe("Failed");
    expect(byId.invalid?.error).toMatch(/artifact\.name/);
    expect(byId.elsewhere?.error).toMatch(/names the id 'good'/);
    expect(byId.climbs?.error).toMatch(/outside the entry's directory/);
    expect(entries.find((e) => e.id === "climbs")?.path).toBeUndefined();
    expect((await catalog.get("truncated"))?.artifact.status).toBe("Failed");
  });

  it("an entry whose model file was deleted is listed as Failed, and comes back when registered again", async () => {
    const file = await ggufFile(join(tmp, "gone.gguf"));
    await catalog.registerLocalFile(file);
    await rm(file);
    const [entry] = await catalog.list();
    expect(entry?.artifact.status).toBe("Failed");
    expect(entry?.artifact.error).toMatch(/missing/);
    await ggufFile(file, 128);
    const again = await catalog.registerLocalFile(file);
    expect(again.id).toBe("gone");
    expect(again.artifact).toMatchObject({ status: "Available", size_bytes: 128 });
  });

  it("refuses ids that could escape the models directory", async () => {
    for (const id of ["../../etc", "..", ".", "a/b", "/etc/passwd", "", ".hidden", "-flag", "UPPER", "a\\b"]) {
      const err = await caught(catalog.get(id));
      expect(err, id).toBeInstanceOf(ValidationError);
      expect((await caught(catalog.remove(id))).statusCode, id).toBe(400);
      expect(() => modelDirOf(models, id), id).toThrow(ValidationError);
    }
  });

  it("remove deletes the entry's directory and never the file registered in place", async () => {
    const file = await ggufFile(join(tmp, "keep-me.gguf"));
    const entry = await catalog.registerLocalFile(file);
    const removed = await catalog.remove(entry.id);
    expect(removed.id).toBe("keep-me");
    expect(await catalog.list()).toEqual([]);
    expect((await stat(file)).isFile()).toBe(true);
    const again = await caught(catalog.remove("keep-me"));
    expect(again).toBeInstanceOf(ModelNotFoundError);
    expect(again.statusCode).toBe(404);
  });

  it("resolve: an id (any case), an absolute .gguf path, or a ModelNotFoundError with a hint", async () => {
    const file = await ggufFile(join(tmp, "stories260K.gguf"));
    const viaPath = await catalog.resolve(file);
    expect(viaPath.id).toBe("stories260k");
    expect((await catalog.resolve("stories260k")).path).toBe(file);
    expect((await catalog.resolve("stories260K")).id).toBe("stories260k");
    for (const ref of ["no-such-model", "hf:TheBloke/x-GGUF", "./stories260K.gguf", "../../etc"]) {
      const err = await caught(catalog.resolve(ref));
      expect(err, ref).toBeInstanceOf(ModelNotFoundError);
      expect(err.message, ref).toContain(RESOLVE_HINT);
      expect(err.statusCode).toBe(404);
    }
  });
});
