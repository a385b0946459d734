import { readdir, rm, stat } from "node:fs/promises";
import { basename, isAbsolute, join, resolve } from "node:path";
import { type Artifact, type ArtifactMetadata, ModelNotFoundError, RbeeError } from "@rbee/contract";
import { brokenEntry, type CatalogEntry, entryFromMetadata } from "./catalog-entry.js";
import { checkGgufFile } from "./gguf-file.js";
import { readMetadataFile, writeMetadataFile } from "./metadata-file.js";
import { assertModelId, idWithPathHash, isModelId, modelDirOf, modelIdFromFileName } from "./model-id.js";

/** What to say when a model reference names nothing the catalog can serve. */
export const RESOLVE_HINT =
  "use an absolute path of a .gguf file on this machine, or a model id from `rbee model ls`; Hugging Face references come with the model catalog";

export interface RegisterOptions {
  /** The id to register under; default: derived from the file name (see modelIdFromFileName). */
  id?: string;
  /** The display name; default: the file name without `.gguf`. */
  name?: string;
}

/** A model id that another file already holds. */
export class ModelIdTakenError extends RbeeError {
  constructor(id: string, takenBy: string | undefined) {
    super(
      `the model id '${id}' is already used${takenBy ? ` by ${takenBy}` : ""}; choose another id or remove that model first`,
      { statusCode: 409, code: "model_id_taken", param: "id", details: { id } },
    );
  }
}

/** What a caller of writeEntry says about an entry (the id and kind are the catalog's). */
export type EntryFields = Pick<Artifact, "name" | "version" | "size_bytes" | "source_url" | "status"> &
  Partial<Pick<Artifact, "files" | "error" | "gguf" | "downloaded_bytes" | "format" | "hf_config">>;

/** How many hex digits of the path hash to try when a file's plain id is taken. */
const HASH_LENGTHS = [6, 10, 16, 64];

/**
 * The model catalog of one machine: a directory per model under `modelsDir`, each with a
 * metadata.json in the catalog format. Local GGUF files are registered in place (never copied);
 * removing an entry deletes its directory only, never a file outside the cache.
 */
export class ModelCatalog {
  readonly modelsDir: string;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(modelsDir: string) {
    this.modelsDir = resolve(modelsDir);
  }

  /**
   * Every entry, sorted by id. An entry whose metadata.json is missing, truncated or invalid, or
   * whose model file is gone, is listed with status "Failed" and an error saying what is wrong.
   */
  async list(): Promise<CatalogEntry[]> {
    let names: string[];
    try {
      const dirents = await readdir(this.modelsDir, { withFileTypes: true });
      names = dirents.filter((d) => d.isDirectory() && isModelId(d.name)).map((d) => d.name);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
    const entries = await Promise.all(names.sort().map((id) => this.#read(id)));
    return entries.filter((e): e is CatalogEntry => e !== undefined);
  }

  /**
   * The entry with this id, broken or not; undefined when there is none.
   * @throws ValidationError for an id that is not a model id (e.g. "../../etc").
   */
  async get(id: string): Promise<CatalogEntry | undefined> {
    assertModelId(id);
    return this.#read(id);
  }

  /**
   * Adds a GGUF file of this machine to the catalog, in place: the entry's file is `absPath` itself
   * and its source_url `file://<absPath>`. Registering the same file again answers the same entry;
   * a different file whose name gives a taken id gets the id with a short hash of its path.
   *
   * @throws ValidationError for a relative path, a non-file or a file that is not GGUF;
   *   ModelNotFoundError when nothing is at the path; ModelIdTakenError when `options.id` is taken.
   */
  registerLocalFile(absPath: string, options: RegisterOptions = {}): Promise<CatalogEntry> {
    return this.#exclusive(() => this.#register(absPath, options));
  }

  /**
   * Writes an entry as given: the provisioner's Downloading, Available and Failed states. Files are
   * relative to the entry's directory (files the catalog holds) or absolute (files used in place);
   * created_at is kept from an existing entry.
   * @throws ValidationError for an invalid id.
   */
  writeEntry(id: string, artifact: EntryFields): Promise<CatalogEntry> {
    assertModelId(id);
    return this.#exclusive(async () => {
      const existing = await this.#read(id);
      const now = new Date().toISOString();
      const metadata: ArtifactMetadata = {
        artifact: { ...artifact, id, kind: "model" },
        created_at: existing?.created_at ?? now,
        updated_at: now,
      };
      const dir = modelDirOf(this.modelsDir, id);
      await writeMetadataFile(dir, metadata);
      return entryFromMetadata(id, dir, metadata);
    });
  }

  /**
   * Removes an entry: its directory under the models directory, nothing else (a file registered in
   * place stays where it is).
   * @throws ValidationError for an invalid id; ModelNotFoundError when there is no such entry.
   */
  remove(id: string): Promise<CatalogEntry> {
    return this.#exclusive(async () => {
      const dir = modelDirOf(this.modelsDir, id);
      const entry = await this.#read(id);
      if (entry === undefined) throw new ModelNotFoundError(id);
      await rm(dir, { recursive: true, force: true });
      return entry;
    });
  }

  /**
   * Finds what a model reference names: a catalog id (case does not matter), or an absolute path
   * of a GGUF file on this machine (registered on the way).
   * @throws ModelNotFoundError with a hint for anything else, and the errors of registerLocalFile.
   */
  async resolve(ref: string): Promise<CatalogEntry> {
    const text = ref.trim();
    if (isAbsolute(text)) return this.registerLocalFile(text);
    const id = text.toLowerCase();
    if (isModelId(id)) {
      const entry = await this.#read(id);
      if (entry !== undefined) return entry;
    }
    throw new ModelNotFoundError(text, RESOLVE_HINT);
  }

  async #read(id: string): Promise<CatalogEntry | undefined> {
    const dir = modelDirOf(this.modelsDir, id);
    try {
      if (!(await stat(dir)).isDirectory()) return undefined;
    } catch {
      return undefined;
    }
    const read = await readMetadataFile(dir);
    if (!read.ok) return brokenEntry(id, dir, read.error);
    const entry = entryFromMetadata(id, dir, read.metadata);
    if (entry.artifact.status !== "Available" || entry.path === undefined) return entry;
    const missing = await filesProblem(entry);
    if (missing === undefined) return entry;
    return { ...entry, artifact: { ...entry.artifact, status: "Failed", error: missing } };
  }

  async #register(given: string, options: RegisterOptions): Promise<CatalogEntry> {
    const { sizeBytes } = await checkGgufFile(given);
    const absPath = resolve(given);
    if (options.id !== undefined) {
      assertModelId(options.id, "id");
      const taken = await this.#read(options.id);
      if (taken === undefined || taken.path === absPath)
        return this.#write(options.id, absPath, sizeBytes, options, taken);
      throw new ModelIdTakenError(options.id, taken.path);
    }
    const same = (await this.list()).find((e) => e.path === absPath);
    if (same !== undefined) return this.#write(same.id, absPath, sizeBytes, options, same);
    const base = modelIdFromFileName(absPath);
    for (const id of [base, ...HASH_LENGTHS.map((n) => idWithPathHash(base, absPath, n))]) {
      const taken = await this.#read(id);
      if (taken === undefined) return this.#write(id, absPath, sizeBytes, options, undefined);
    }
    throw new ModelIdTakenError(base, undefined);
  }

  /** Writes (or refreshes) an entry for a file used in place; an unchanged entry is left alone. */
  async #write(
    id: string,
    absPath: string,
    sizeBytes: number,
    options: RegisterOptions,
    existing: CatalogEntry | undefined,
  ): Promise<CatalogEntry> {
    const name = options.name ?? existing?.artifact.name ?? basename(absPath).replace(/\.gguf$/i, "");
    const a = existing?.artifact;
    if (a?.status === "Available" && a.size_bytes === sizeBytes && a.name === name) return existing as CatalogEntry;
    const now = new Date().toISOString();
    const metadata: ArtifactMetadata = {
      artifact: {
        id,
        name,
        version: "local",
        size_bytes: sizeBytes,
        source_url: `file://${absPath}`,
        status: "Available",
        kind: "model",
        files: [{ path: absPath, size_bytes: sizeBytes }],
      },
      created_at: existing?.created_at ?? now,
      updated_at: now,
    };
    const dir = modelDirOf(this.modelsDir, id);
    await writeMetadataFile(dir, metadata);
    return entryFromMetadata(id, dir, metadata);
  }

  /** Runs registrations and removals one at a time, so two of them never pick the same id. */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }
}

/**
 * What is wrong with an Available entry's files now: one missing, or not of the size it had when it
 * was added (truncated, or replaced): a worker could not load it, and the queen must not place one
 * for it. Looked at on every read (a stat per file), so a file changed behind the catalog's back is
 * reported Failed at the next heartbeat.
 */
async function filesProblem(entry: CatalogEntry): Promise<string | undefined> {
  const files = entry.artifact.files ?? [{ path: entry.path as string, size_bytes: undefined }];
  for (const f of files) {
    const path = isAbsolute(f.path) ? f.path : join(entry.dir, f.path);
    let info: Awaited<ReturnType<typeof stat>>;
    try {
      info = await stat(path);
    } catch {
      return `the model file ${path} is missing; register it again or remove this model`;
    }
    if (!info.isFile()) return `the model file ${path} is not a file any more`;
    if (f.size_bytes !== undefined && info.size !== f.size_bytes) {
      const how = info.size < f.size_bytes ? "truncated" : "replaced";
      return `the model file ${path} is ${info.size} bytes but was ${f.size_bytes} when it was added (${how}?); download the model again, or register the file again if you changed it on purpose`;
    }
  }
  return undefined;
}
