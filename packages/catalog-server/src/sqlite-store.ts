import type { CatalogReview, WorkerCategory, WorkerPackageManifest } from "@rbee/contract";
import Database from "better-sqlite3";
import type {
  Account,
  CatalogStore,
  StoredArtifact,
  StoredVersion,
  StoredWorker,
  WorkerQuery,
} from "./catalog-store.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS accounts (
  name TEXT PRIMARY KEY,
  token_sha256 TEXT NOT NULL UNIQUE,
  can_publish INTEGER NOT NULL,
  public_key TEXT,
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS workers (
  id TEXT PRIMARY KEY,
  publisher TEXT NOT NULL REFERENCES accounts(name),
  category TEXT NOT NULL,
  description TEXT NOT NULL,
  latest_version TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS versions (
  worker_id TEXT NOT NULL REFERENCES workers(id),
  version TEXT NOT NULL,
  manifest TEXT NOT NULL,
  published_at TEXT NOT NULL,
  PRIMARY KEY (worker_id, version)
);
CREATE TABLE IF NOT EXISTS artifacts (
  worker_id TEXT NOT NULL,
  version TEXT NOT NULL,
  platform TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  size_bytes INTEGER NOT NULL,
  signature TEXT NOT NULL,
  public_key TEXT NOT NULL,
  blob_key TEXT NOT NULL,
  PRIMARY KEY (worker_id, version, platform),
  FOREIGN KEY (worker_id, version) REFERENCES versions(worker_id, version)
);
CREATE TABLE IF NOT EXISTS reviews (
  worker_id TEXT NOT NULL REFERENCES workers(id),
  user TEXT NOT NULL,
  stars INTEGER NOT NULL CHECK (stars BETWEEN 1 AND 5),
  text TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (worker_id, user)
);
`;

interface AccountRow {
  name: string;
  can_publish: number;
  public_key: string | null;
}

/** The catalog in one SQLite file (better-sqlite3), created on first open; WAL mode. */
export class SqliteCatalogStore implements CatalogStore {
  readonly #db: Database.Database;

  constructor(path: string) {
    this.#db = new Database(path);
    this.#db.pragma("journal_mode = WAL");
    this.#db.pragma("foreign_keys = ON");
    this.#db.exec(SCHEMA);
  }

  accountByTokenHash(tokenSha256: string): Account | undefined {
    const row = this.#db
      .prepare("SELECT name, can_publish, public_key FROM accounts WHERE token_sha256 = ?")
      .get(tokenSha256) as AccountRow | undefined;
    return row && { name: row.name, can_publish: row.can_publish === 1, public_key: row.public_key };
  }

  addAccount(name: string, tokenSha256: string, canPublish: boolean): void {
    this.#db
      .prepare(
        `INSERT INTO accounts (name, token_sha256, can_publish, created_at) VALUES (?, ?, ?, ?)
         ON CONFLICT(name) DO UPDATE SET token_sha256 = excluded.token_sha256, can_publish = excluded.can_publish`,
      )
      .run(name, tokenSha256, canPublish ? 1 : 0, new Date().toISOString());
  }

  setPublisherKey(name: string, publicKey: string): void {
    this.#db.prepare("UPDATE accounts SET public_key = ? WHERE name = ?").run(publicKey, name);
  }

  worker(id: string): StoredWorker | undefined {
    return this.#db.prepare("SELECT * FROM workers WHERE id = ?").get(id) as StoredWorker | undefined;
  }

  listWorkers(q: WorkerQuery): StoredWorker[] {
    const where: string[] = [];
    const args: string[] = [];
    if (q.category !== undefined) {
      where.push("category = ?");
      args.push(q.category);
    }
    for (const word of (q.text ?? "").toLowerCase().split(/\s+/).filter(Boolean)) {
      where.push("(instr(lower(id), ?) > 0 OR instr(lower(description), ?) > 0)");
      args.push(word, word);
    }
    const sql = `SELECT * FROM workers ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY id`;
    return this.#db.prepare(sql).all(...args) as StoredWorker[];
  }

  versions(id: string): StoredVersion[] {
    const rows = this.#db.prepare("SELECT * FROM versions WHERE worker_id = ?").all(id) as Array<
      Omit<StoredVersion, "manifest"> & { manifest: string }
    >;
    return rows.map((r) => ({ ...r, manifest: JSON.parse(r.manifest) as WorkerPackageManifest }));
  }

  artifacts(id: string, version?: string): StoredArtifact[] {
    return (
      version === undefined
        ? this.#db.prepare("SELECT * FROM artifacts WHERE worker_id = ?").all(id)
        : this.#db.prepare("SELECT * FROM artifacts WHERE worker_id = ? AND version = ?").all(id, version)
    ) as StoredArtifact[];
  }

  publish(w: StoredWorker, v: StoredVersion, a: StoredArtifact): boolean {
    return this.#db.transaction(() => {
      const taken = this.#db
        .prepare("SELECT 1 FROM artifacts WHERE worker_id = ? AND version = ? AND platform = ?")
        .get(a.worker_id, a.version, a.platform);
      if (taken !== undefined) return false;
      this.#db
        .prepare(
          `INSERT INTO workers (id, publisher, category, description, latest_version, created_at, updated_at)
           VALUES (@id, @publisher, @category, @description, @latest_version, @created_at, @updated_at)
           ON CONFLICT(id) DO UPDATE SET category = excluded.category, description = excluded.description,
             latest_version = excluded.latest_version, updated_at = excluded.updated_at`,
        )
        .run(w);
      this.#db
        .prepare("INSERT OR IGNORE INTO versions (worker_id, version, manifest, published_at) VALUES (?, ?, ?, ?)")
        .run(v.worker_id, v.version, JSON.stringify(v.manifest), v.published_at);
      this.#db
        .prepare(
          `INSERT INTO artifacts (worker_id, version, platform, sha256, size_bytes, signature, public_key, blob_key)
           VALUES (@worker_id, @version, @platform, @sha256, @size_bytes, @signature, @public_key, @blob_key)`,
        )
        .run(a);
      return true;
    })();
  }

  reviews(id: string): CatalogReview[] {
    return this.#db
      .prepare(
        "SELECT user, stars, text, created_at, updated_at FROM reviews WHERE worker_id = ? ORDER BY updated_at DESC",
      )
      .all(id) as CatalogReview[];
  }

  upsertReview(id: string, user: string, stars: number, text: string, now: string): boolean {
    const had = this.#db.prepare("SELECT 1 FROM reviews WHERE worker_id = ? AND user = ?").get(id, user) !== undefined;
    this.#db
      .prepare(
        `INSERT INTO reviews (worker_id, user, stars, text, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT(worker_id, user) DO UPDATE SET stars = excluded.stars, text = excluded.text, updated_at = excluded.updated_at`,
      )
      .run(id, user, stars, text, now, now);
    return had;
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }
}

export type { WorkerCategory };
