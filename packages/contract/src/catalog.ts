import { z } from "zod";
import { Bytes, Timestamp } from "./common.js";

export const ArtifactStatus = z.enum(["Available", "Downloading", "Failed"]);
export type ArtifactStatus = z.infer<typeof ArtifactStatus>;

/** One file of an artifact (a model can be several split GGUF files). */
export const ArtifactFile = z.looseObject({
  /**
   * Relative to the artifact's directory (never with `..`), or absolute for a file used in place:
   * a local GGUF the user pointed at, or a file in the Hugging Face cache.
   */
  path: z.string().min(1),
  size_bytes: Bytes,
  sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
});
export type ArtifactFile = z.infer<typeof ArtifactFile>;

/** The `artifact` of a metadata.json: a model or a worker package in a hive's catalog. */
export const Artifact = z.looseObject({
  id: z.string().min(1),
  name: z.string(),
  version: z.string(),
  size_bytes: Bytes,
  source_url: z.string(),
  status: ArtifactStatus,
  kind: z.enum(["model", "worker"]).optional(),
  files: z.array(ArtifactFile).optional(),
  /** Set when `status` is Failed: what went wrong, in words. */
  error: z.string().optional(),
});
export type Artifact = z.infer<typeof Artifact>;

/** `<cache>/models/<id>/metadata.json` and `<cache>/workers/<id>/metadata.json`. */
export const ArtifactMetadata = z.looseObject({
  artifact: Artifact,
  created_at: Timestamp,
  updated_at: Timestamp,
});
export type ArtifactMetadata = z.infer<typeof ArtifactMetadata>;
