import { mkdirSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { getConnInfo } from "@hono/node-server/conninfo";
import { DEFAULT_PORTS } from "@rbee/contract";
import { createCatalogApp } from "./catalog-app.js";
import type { BlobStore, CatalogStore } from "./catalog-store.js";
import { DirectoryBlobStore } from "./directory-blobs.js";
import { S3BlobStore, s3OptionsFrom } from "./s3-blobs.js";
import { SqliteCatalogStore } from "./sqlite-store.js";

/** The catalog server's default port (DESIGN.md). */
export const DEFAULT_CATALOG_PORT = DEFAULT_PORTS.catalogServer;

export interface ServeCatalogOptions {
  /** Where the SQLite file and the blob directory go: `<dir>/catalog.sqlite`, `<dir>/blobs/`. */
  dataDir: string;
  /** Where the artifacts go instead of `<dataDir>/blobs/` (see {@link openBlobStore}). */
  blobs?: BlobStore;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  maxUploadBytes?: number;
  writeLimit?: { max: number; windowMs: number };
  downloadBytesPerSecond?: number;
  /** An rbee dashboard (a queen's URL) the marketplace page links to: "Install on my cluster". */
  dashboardUrl?: string;
}

export interface RunningCatalog {
  url: string;
  port: number;
  store: CatalogStore;
  close(): Promise<void>;
}

/**
 * The blob store `--blobs` names: a directory (a path; default `<dataDir>/blobs`), or
 * `s3://bucket/prefix` with the AWS variables of `env` (an S3-compatible bucket, checked before
 * this returns: a BlobStoreConfigError says what is wrong).
 */
export async function openBlobStore(
  spec: string | undefined,
  dataDir: string,
  env: NodeJS.ProcessEnv,
): Promise<BlobStore> {
  if (spec === undefined || spec === "") return new DirectoryBlobStore(join(dataDir, "blobs"));
  if (spec.startsWith("s3://")) return S3BlobStore.open(s3OptionsFrom(spec, env));
  return new DirectoryBlobStore(spec);
}

/** Starts the catalog server on Node with SQLite under `dataDir` and a blob directory there (or `blobs`). */
export async function serveCatalog(o: ServeCatalogOptions): Promise<RunningCatalog> {
  mkdirSync(o.dataDir, { recursive: true });
  const store = new SqliteCatalogStore(join(o.dataDir, "catalog.sqlite"));
  const blobs = o.blobs ?? new DirectoryBlobStore(join(o.dataDir, "blobs"));
  const host = o.host ?? "127.0.0.1";
  const app = createCatalogApp({
    store,
    blobs,
    maxUploadBytes: o.maxUploadBytes,
    writeLimit: o.writeLimit,
    downloadBytesPerSecond: o.downloadBytesPerSecond,
    dashboardUrl: o.dashboardUrl,
    clientAddress: (c) => getConnInfo(c).remote.address ?? "unknown",
  });
  const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, hostname: host, port: o.port ?? DEFAULT_CATALOG_PORT }, () => resolve(s));
    s.once("error", reject);
  });
  // as every rbee daemon does (server-kit): idle connections outlive the clients' pooled sockets, so
  // a client never sends on a socket the server is closing (a reset GET in the queen's update job)
  (server as unknown as { keepAliveTimeout: number }).keepAliveTimeout = 65_000;
  const port = (server.address() as AddressInfo).port;
  let closed: Promise<void> | undefined;
  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
    port,
    store,
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      }).finally(() => store.close());
      return closed;
    },
  };
}
