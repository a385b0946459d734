import type { CatalogReview, WorkerCategory, WorkerPackageManifest } from "@rbee/contract";

/** An account of the catalog: it writes reviews, and publishes when `can_publish`. */
export interface Account {
  name: string;
  can_publish: boolean;
  /** The publisher's signing key, fixed by its first publish. */
  public_key: string | null;
}

/** A package as stored: its latest manifest's facts, for listing and filtering. */
export interface StoredWorker {
  id: string;
  publisher: string;
  category: WorkerCategory;
  description: string;
  latest_version: string;
  created_at: string;
  updated_at: string;
}

export interface StoredArtifact {
  worker_id: string;
  version: string;
  platform: string;
  sha256: string;
  size_bytes: number;
  signature: string;
  public_key: string;
  /** Where its bytes are in the blob store. */
  blob_key: string;
}

export interface StoredVersion {
  worker_id: string;
  version: string;
  manifest: WorkerPackageManifest;
  published_at: string;
}

/** What `GET /workers` filters on (the latest manifest's facts are checked by the caller). */
export interface WorkerQuery {
  category?: WorkerCategory | undefined;
  /** Words all found in the id or the description, any case. */
  text?: string | undefined;
}

/**
 * Where the catalog keeps its records: SQLite on Node by default (SqliteCatalogStore); the
 * interface is small so that a store for an edge runtime (D1, Postgres) can take its place.
 */
export interface CatalogStore {
  accountByTokenHash(tokenSha256: string): Account | undefined;
  addAccount(name: string, tokenSha256: string, canPublish: boolean): void;
  setPublisherKey(name: string, publicKey: string): void;

  worker(id: string): StoredWorker | undefined;
  listWorkers(q: WorkerQuery): StoredWorker[];
  versions(id: string): StoredVersion[];
  artifacts(id: string, version?: string): StoredArtifact[];
  /**
   * Records a version and its artifact in one transaction; false when that version already has an
   * artifact for the platform (versions are immutable).
   */
  publish(w: StoredWorker, v: StoredVersion, a: StoredArtifact): boolean;

  reviews(id: string): CatalogReview[];
  /** Adds the user's review of a package, or replaces it; true when it replaced one. */
  upsertReview(id: string, user: string, stars: number, text: string, now: string): boolean;
  close(): void;
}

/** Where artifact bytes live: a directory by default; object storage elsewhere. */
export interface BlobStore {
  put(key: string, data: Buffer): Promise<void>;
  /** The blob's size and a stream of its bytes from `start` to `end` inclusive. */
  open(key: string, start?: number, end?: number): Promise<{ size: number; stream: ReadableStream<Uint8Array> }>;
  size(key: string): Promise<number>;
}
