import { type FileHandle, open, stat } from "node:fs/promises";
import { basename, isAbsolute, join } from "node:path";
import { type CatalogEntry, type ModelCatalog, toHiveModel } from "@rbee/catalog";
import {
  type ArtifactFile,
  ModelNotFoundError,
  NotFoundError,
  RbeeError,
  type SharedModel,
  ValidationError,
} from "@rbee/contract";
import { sha256OfFile } from "@rbee/downloader";
import type { Logger } from "@rbee/server-kit";
import { ModelNotAvailableError } from "./errors.js";

/** A model file opened for another hive: the handle to stream from and what describes its bytes. */
export interface OpenModelFile {
  handle: FileHandle;
  size: number;
  /** Changes whenever the file does (size, modification time), so a resumed fetch notices. */
  etag: string;
}

/** A file of an entry that changed on disk after its size was recorded. */
export class ModelFileChangedError extends RbeeError {
  constructor(modelId: string, path: string, recorded: number, now: number) {
    super(
      `the file ${path} of model '${modelId}' has ${now} bytes but the catalog recorded ${recorded}; register it again (POST /v1/models with its path) or remove the model`,
      { statusCode: 409, code: "model_file_changed", details: { model: modelId, path } },
    );
  }
}

/**
 * What a hive offers the other hives of its cluster: its Available models, described with every
 * file's name, size and sha256 (computed once for a file registered in place, then kept in the
 * catalog), and opened for streaming by name. Names are looked up in the entry's own file list, so
 * no request can reach a file outside it.
 */
export class ModelSharing {
  readonly #catalog: ModelCatalog;
  readonly #log: Logger;
  /** Hashing under way, by model id: concurrent requests share one pass over the file. */
  readonly #hashing = new Map<string, Promise<SharedModel>>();

  constructor(catalog: ModelCatalog, log: Logger) {
    this.#catalog = catalog;
    this.#log = log;
  }

  /**
   * The model with its files. A file without a sha256 yet is hashed now (on the hash thread) and the
   * digest written to metadata.json, so only the first request pays for it.
   * @throws ValidationError (400) for a malformed id, ModelNotFoundError (404), ModelNotAvailableError (409).
   */
  async describe(id: string): Promise<SharedModel> {
    const entry = await this.#available(id);
    const files = entry.artifact.files ?? [];
    const known = await Promise.all(
      files.map(async (f) => knownSha256(entry, f, (await stat(filePath(entry, f))).mtimeMs)),
    );
    if (known.every((sha) => sha !== undefined)) return shared(entry);
    let running = this.#hashing.get(entry.id);
    if (!running) {
      running = this.#hashMissing(entry).finally(() => this.#hashing.delete(entry.id));
      this.#hashing.set(entry.id, running);
    }
    return running;
  }

  /**
   * Opens the file `name` of a model for reading.
   * @throws ValidationError (400) for a name that is not a plain file name; NotFoundError (404) for a
   *   model or a file the catalog does not have; ModelFileChangedError (409) for a file whose size moved.
   */
  async open(id: string, name: string): Promise<OpenModelFile> {
    if (!isPlainFileName(name)) {
      throw new ValidationError(
        `'${name}' is not a file name: a model's files are named without directories; GET /v1/models/${id} lists them`,
        "name",
      );
    }
    const entry = await this.#available(id);
    const file = (entry.artifact.files ?? []).find((f) => basename(f.path) === name);
    if (file === undefined) {
      throw new NotFoundError(
        `model '${entry.id}' has no file named '${name}'; GET /v1/models/${entry.id} lists its files`,
        "model_file_not_found",
      );
    }
    const path = filePath(entry, file);
    const handle = await open(path, "r");
    try {
      const info = await handle.stat();
      if (info.size !== file.size_bytes) throw new ModelFileChangedError(entry.id, path, file.size_bytes, info.size);
      // the content's own hash when the catalog knows it (a Hub ETag is the same), so a part begun
      // from either source resumes from the other; else size and time, which change with the file
      const sha = knownSha256(entry, file, info.mtimeMs);
      const etag = sha ? `"${sha}"` : `"${info.size.toString(16)}-${Math.trunc(info.mtimeMs).toString(16)}"`;
      return { handle, size: info.size, etag };
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async #available(id: string): Promise<CatalogEntry> {
    const entry = await this.#catalog.get(id.toLowerCase());
    if (entry === undefined) throw new ModelNotFoundError(id, "this hive's catalog does not have it");
    if (entry.artifact.status !== "Available" || entry.path === undefined)
      throw new ModelNotAvailableError(entry.id, entry.artifact.status, entry.artifact.error);
    return entry;
  }

  async #hashMissing(entry: CatalogEntry): Promise<SharedModel> {
    const t0 = performance.now();
    const files: ArtifactFile[] = [];
    for (const f of entry.artifact.files ?? []) {
      const path = filePath(entry, f);
      const info = await stat(path);
      if (knownSha256(entry, f, info.mtimeMs) !== undefined) {
        files.push(f);
        continue;
      }
      if (info.size !== f.size_bytes) throw new ModelFileChangedError(entry.id, path, f.size_bytes, info.size);
      files.push({ ...f, sha256: await sha256OfFile(path, info.size) });
    }
    this.#log.info(
      { model: entry.id, bytes: entry.artifact.size_bytes, ms: Math.round(performance.now() - t0) },
      "model files hashed for sharing",
    );
    // written only if the entry still names the same files: a re-registration meanwhile wins
    const now = await this.#available(entry.id);
    const same =
      JSON.stringify(now.artifact.files?.map((f) => [f.path, f.size_bytes])) ===
      JSON.stringify(files.map((f) => [f.path, f.size_bytes]));
    if (!same) return this.describe(entry.id);
    const { id: _id, kind: _kind, ...fields } = now.artifact;
    return shared(await this.#catalog.writeEntry(entry.id, { ...fields, files }));
  }
}

/** A file name without directories, dots or separators of any platform. */
function isPlainFileName(name: string): boolean {
  return name !== "" && name !== "." && name !== ".." && !/[/\\\0]/.test(name) && name.length <= 255;
}

/**
 * The file's sha256 as the catalog has it, unless the file is one used in place (a path outside the
 * catalog) that was modified after the entry was last written: then it is hashed again.
 */
function knownSha256(entry: CatalogEntry, file: ArtifactFile, mtimeMs: number): string | undefined {
  if (file.sha256 === undefined) return undefined;
  if (!isAbsolute(file.path) || entry.updated_at === undefined) return file.sha256;
  return mtimeMs <= Date.parse(entry.updated_at) ? file.sha256 : undefined;
}

function filePath(entry: CatalogEntry, file: ArtifactFile): string {
  return isAbsolute(file.path) ? file.path : join(entry.dir, file.path);
}

function shared(entry: CatalogEntry): SharedModel {
  return {
    ...toHiveModel(entry),
    version: entry.artifact.version,
    files: (entry.artifact.files ?? []).map((f) => ({
      name: basename(f.path),
      size_bytes: f.size_bytes,
      sha256: f.sha256 as string,
    })),
  };
}
