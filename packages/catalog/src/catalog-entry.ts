import { isAbsolute, join, relative, sep } from "node:path";
import type { Artifact, ArtifactMetadata, HiveModel } from "@rbee/contract";

/** One model of the catalog, as read from its directory. */
export interface CatalogEntry {
  id: string;
  /** `<models>/<id>`: the entry's own directory, which holds metadata.json. */
  dir: string;
  /**
   * The artifact of metadata.json. For a broken entry (metadata.json missing, truncated or invalid,
   * or its model file gone) a stand-in with status "Failed" and `error` saying what is wrong.
   */
  artifact: Artifact;
  /** Absolute path of the (first) model file; undefined when the entry has none it can use. */
  path: string | undefined;
  created_at: string | undefined;
  updated_at: string | undefined;
}

/** An entry whose metadata.json could not be used: listed, status Failed, never thrown. */
export function brokenEntry(id: string, dir: string, error: string): CatalogEntry {
  return {
    id,
    dir,
    artifact: { id, name: id, version: "", size_bytes: 0, source_url: "", status: "Failed", kind: "model", error },
    path: undefined,
    created_at: undefined,
    updated_at: undefined,
  };
}

/**
 * An entry from a valid metadata.json. The first file's path is absolute for a file used in place
 * (registered from elsewhere on the machine) or relative to the entry's directory (a file the catalog
 * holds itself); a relative path that climbs out of the directory makes the entry broken.
 */
export function entryFromMetadata(id: string, dir: string, metadata: ArtifactMetadata): CatalogEntry {
  const { artifact } = metadata;
  if (artifact.id !== id) {
    return brokenEntry(id, dir, `metadata.json names the id '${artifact.id}' but lives in the directory '${id}'`);
  }
  const first = artifact.files?.[0]?.path;
  let path: string | undefined;
  if (first !== undefined) {
    path = isAbsolute(first) ? first : join(dir, first);
    const rel = relative(dir, path);
    if (!isAbsolute(first) && (rel === "" || rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel))) {
      return brokenEntry(id, dir, `metadata.json names the file '${first}', which is outside the entry's directory`);
    }
  }
  return { id, dir, artifact, path, created_at: metadata.created_at, updated_at: metadata.updated_at };
}

/** The entry as a hive reports it to the queen. */
export function toHiveModel(entry: CatalogEntry): HiveModel {
  const a = entry.artifact;
  const model: HiveModel = { id: entry.id, name: a.name, size_bytes: a.size_bytes, status: a.status };
  if (entry.path !== undefined) model.path = entry.path;
  if (a.source_url !== "") model.source_url = a.source_url;
  if (a.error !== undefined) model.error = a.error;
  if (a.gguf !== undefined) model.gguf = a.gguf;
  if (a.format !== undefined) model.format = a.format;
  if (a.hf_config !== undefined) model.hf_config = a.hf_config;
  if (a.downloaded_bytes !== undefined) model.downloaded_bytes = a.downloaded_bytes;
  return model;
}
