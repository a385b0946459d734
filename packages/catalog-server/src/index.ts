export { accountOf, createAccount, tokenHash } from "./accounts.js";
export { type CatalogAppOptions, createCatalogApp } from "./catalog-app.js";
export type { Account, BlobStore, CatalogStore, StoredArtifact, StoredVersion, StoredWorker } from "./catalog-store.js";
export { DirectoryBlobStore } from "./directory-blobs.js";
export { marketplacePage } from "./marketplace-page.js";
export { RateLimiter } from "./rate-limit.js";
export { DEFAULT_CATALOG_PORT, type RunningCatalog, type ServeCatalogOptions, serveCatalog } from "./serve-catalog.js";
export { SqliteCatalogStore } from "./sqlite-store.js";
