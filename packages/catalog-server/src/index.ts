export { accountOf, createAccount, tokenHash } from "./accounts.js";
export { type CatalogAppOptions, createCatalogApp } from "./catalog-app.js";
export type { Account, BlobStore, CatalogStore, StoredArtifact, StoredVersion, StoredWorker } from "./catalog-store.js";
export { DirectoryBlobStore } from "./directory-blobs.js";
export { marketplacePage } from "./marketplace-page.js";
export { RateLimiter } from "./rate-limit.js";
export { BlobStoreConfigError, type S3BlobOptions, S3BlobStore, S3Error, s3OptionsFrom } from "./s3-blobs.js";
export {
  DEFAULT_CATALOG_PORT,
  openBlobStore,
  type RunningCatalog,
  type ServeCatalogOptions,
  serveCatalog,
} from "./serve-catalog.js";
export { type AwsCredentials, amzDate, EMPTY_SHA256, signingKey, signRequest, uriEncodePath } from "./sigv4.js";
export { SqliteCatalogStore } from "./sqlite-store.js";
