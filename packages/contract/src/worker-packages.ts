import { z } from "zod";
import { DeviceKind } from "./common.js";
import { WorkerCapability } from "./worker.js";
import { configSchemaProblems } from "./worker-config.js";
import { WorkerArtifact, WorkerTypeId } from "./worker-types.js";

/** The marketplace's categories of worker packages. */
export const WorkerCategory = z.enum(["llm", "image", "audio", "embeddings", "adapter"]);
export type WorkerCategory = z.infer<typeof WorkerCategory>;

/** A platform an artifact is built for (`linux-x64`, `darwin-arm64`, ...), or `any` for pure JavaScript. */
export const PackagePlatform = z
  .string()
  .regex(/^(any|(linux|darwin|win32)-(x64|arm64))$/, "must be any, or <os>-<arch> such as linux-x64 or darwin-arm64");
export type PackagePlatform = z.infer<typeof PackagePlatform>;

/** A semantic version, MAJOR.MINOR.PATCH with an optional pre-release. */
export const SemVer = z
  .string()
  .regex(/^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$/, "must be a version such as 1.2.3");

/** A relative path inside a package: no `..`, no absolute path, no backslash. */
const PackagePath = z
  .string()
  .min(1)
  .max(200)
  .refine((p) => !p.startsWith("/") && !p.includes("\\") && !p.split("/").includes(".."), {
    message: "must be a relative path inside the package (no '..', no leading '/')",
  });

/**
 * `rbee-worker.json` at the root of a worker package: the worker type it installs, what it serves
 * and where it runs, the engine it needs and the program the hive starts for it.
 */
export const WorkerPackageManifest = z.strictObject({
  /** The format of this file. */
  schema: z.literal(1).default(1),
  id: WorkerTypeId,
  version: SemVer,
  description: z.string().min(1).max(300),
  category: WorkerCategory,
  capabilities: z.array(WorkerCapability).min(1),
  device_kinds: z.array(DeviceKind).min(1),
  platforms: z.array(PackagePlatform).min(1),
  /** What a worker of it loads (default: nothing). */
  artifact: WorkerArtifact.default("none"),
  /** An engine binary it needs from the machine's engines (e.g. llama-server). */
  engine: z.string().min(1).optional(),
  /** The program the hive starts with node, relative to the package root. */
  entry: PackagePath,
  /**
   * A JSON Schema of the configuration the worker takes (the subset of worker-config.ts); a spawn's
   * `config` is checked against it and reaches the worker as RBEE_WORKER_CONFIG.
   */
  config_schema: z
    .record(z.string(), z.unknown())
    .superRefine((schema, ctx) => {
      for (const message of configSchemaProblems(schema)) ctx.addIssue({ code: "custom", message });
    })
    .optional(),
  /** Bytes a worker of it needs besides its model (default 64 MiB). */
  memory_bytes: z.number().int().positive().optional(),
  /** How long the hive waits for it to become ready. */
  ready_timeout_ms: z.number().int().positive().optional(),
  homepage: z.url().optional(),
  license: z.string().max(100).optional(),
});
export type WorkerPackageManifest = z.infer<typeof WorkerPackageManifest>;

/** One artifact of a version: a tarball for a platform, its sha256, its publisher's signature. */
export const CatalogArtifact = z.looseObject({
  platform: PackagePlatform,
  size_bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** ed25519 signature of the package's signed statement, base64. */
  signature: z.string().optional(),
  /** The publisher's key, `ed25519:<base64 of the 32-byte public key>`. */
  public_key: z.string().optional(),
});
export type CatalogArtifact = z.infer<typeof CatalogArtifact>;

/** One published version of a worker package. */
export const CatalogVersion = z.looseObject({
  version: SemVer,
  published_at: z.string(),
  manifest: WorkerPackageManifest,
  artifacts: z.array(CatalogArtifact),
});
export type CatalogVersion = z.infer<typeof CatalogVersion>;

/** A worker package as `GET /workers` lists it. */
export const CatalogWorkerSummary = z.looseObject({
  id: WorkerTypeId,
  description: z.string(),
  category: WorkerCategory,
  publisher: z.string(),
  latest_version: SemVer,
  capabilities: z.array(WorkerCapability),
  device_kinds: z.array(DeviceKind),
  platforms: z.array(PackagePlatform),
  rating: z.number().nullable(),
  review_count: z.number().int(),
  install_command: z.string(),
});
export type CatalogWorkerSummary = z.infer<typeof CatalogWorkerSummary>;

/** A review of a worker package. */
export const CatalogReview = z.looseObject({
  user: z.string(),
  stars: z.number().int().min(1).max(5),
  text: z.string(),
  created_at: z.string(),
  updated_at: z.string(),
});
export type CatalogReview = z.infer<typeof CatalogReview>;

/** `GET /workers/{id}`. */
export const CatalogWorkerDetail = CatalogWorkerSummary.extend({
  versions: z.array(CatalogVersion),
  reviews: z.array(CatalogReview),
});
export type CatalogWorkerDetail = z.infer<typeof CatalogWorkerDetail>;

/** `GET /workers`. */
export const CatalogWorkerList = z.looseObject({
  workers: z.array(CatalogWorkerSummary),
  total: z.number().int(),
  page: z.number().int(),
  per_page: z.number().int(),
});
export type CatalogWorkerList = z.infer<typeof CatalogWorkerList>;

/** `POST /workers`: a signed package, its bytes base64. */
export const PublishWorkerRequest = z.strictObject({
  /** The tarball, base64. */
  package: z.string().min(1),
  platform: PackagePlatform.default("any"),
  signature: z.string().min(1),
  public_key: z.string().regex(/^ed25519:[A-Za-z0-9+/]{43}=$/, "must be ed25519:<base64 of a 32-byte key>"),
});
export type PublishWorkerRequest = z.infer<typeof PublishWorkerRequest>;

/** `POST /workers/{id}/reviews`, by a catalog account (its bearer token names the user). */
export const ReviewRequest = z.strictObject({
  stars: z.number().int().min(1).max(5),
  text: z.string().max(4000).default(""),
});
export type ReviewRequest = z.infer<typeof ReviewRequest>;

/**
 * A hive's `POST /v1/worker-packages`: install a version of a package from a catalog (what the queen
 * sends each hive for `rbee worker install`). The hive picks the artifact for its platform (else `any`).
 */
export const InstallWorkerPackageRequest = z.strictObject({
  id: WorkerTypeId,
  version: SemVer,
  artifacts: z
    .array(
      CatalogArtifact.extend({
        /** Where the hive downloads it (the catalog server's download route). */
        url: z.url({ protocol: /^https?$/ }),
      }),
    )
    .min(1),
  /** Install even when the signature is missing or from a key this hive does not trust. */
  allow_unsigned: z.boolean().default(false),
  /** Keep this package up to date within its major version. */
  auto_update: z.boolean().default(false),
});
export type InstallWorkerPackageRequest = z.infer<typeof InstallWorkerPackageRequest>;

/** An installed package, as the hive keeps it in its worker catalog entry (`package`). */
export const InstalledPackageInfo = z.looseObject({
  version: SemVer,
  sha256: z.string(),
  /** `verified`: signed by a trusted key; `allowed-unsigned`: installed with the user's explicit leave. */
  trust: z.enum(["verified", "allowed-unsigned"]),
  publisher_key: z.string().optional(),
  source_url: z.string(),
  installed_at: z.string(),
  auto_update: z.boolean(),
  /** The version it replaced, kept for a roll back. */
  previous_version: SemVer.optional(),
  memory_bytes: z.number().int().positive().optional(),
  category: WorkerCategory,
});
export type InstalledPackageInfo = z.infer<typeof InstalledPackageInfo>;

/** A hive that has a package installed, as the queen's `/v1/worker-packages` routes report it. */
export const PackageInstallation = z.looseObject({
  hive_id: z.string(),
  /** The hive's state: live, stale or lost. */
  hive_state: z.string(),
  version: SemVer,
  /** Whether the hive can run it now (`Available`), else why not. */
  status: z.string(),
  trust: z.enum(["verified", "allowed-unsigned"]),
  auto_update: z.boolean(),
  /** The catalog server it was installed from. */
  catalog: z.string(),
  /** The newest version of its catalog within its major, when newer than the installed one; else null. */
  update_available: SemVer.nullable(),
});
export type PackageInstallation = z.infer<typeof PackageInstallation>;

/** A catalog server the queen asked, and whether it answered. */
export const CatalogSourceStatus = z.looseObject({
  url: z.string(),
  ok: z.boolean(),
  /** Packages it listed for the filters (when it answered). */
  total: z.number().int().optional(),
  /** Why it did not answer. */
  error: z.string().optional(),
});
export type CatalogSourceStatus = z.infer<typeof CatalogSourceStatus>;

/** A catalog's package as the queen lists it: the catalog's summary, which catalog, where it is installed. */
export const QueenWorkerPackage = CatalogWorkerSummary.extend({
  catalog: z.string(),
  installed: z.array(PackageInstallation),
});
export type QueenWorkerPackage = z.infer<typeof QueenWorkerPackage>;

/** `GET /v1/worker-packages` on the queen: its catalogs' packages, merged, and each catalog's answer. */
export const QueenWorkerPackageList = z.looseObject({
  packages: z.array(QueenWorkerPackage),
  catalogs: z.array(CatalogSourceStatus),
});
export type QueenWorkerPackageList = z.infer<typeof QueenWorkerPackageList>;

/** `GET /v1/worker-packages/{id}` on the queen: the catalog's page of it, and where it is installed. */
export const QueenWorkerPackageDetail = CatalogWorkerDetail.extend({
  catalog: z.string(),
  installed: z.array(PackageInstallation),
  catalogs: z.array(CatalogSourceStatus),
});
export type QueenWorkerPackageDetail = z.infer<typeof QueenWorkerPackageDetail>;
