export { type DownloadRequest, type DownloadResult, downloadFile } from "./download-file.js";
export { type DownloadFilesOptions, downloadFiles } from "./download-files.js";
export {
  ChecksumMismatchError,
  DownloadError,
  type DownloadErrorOptions,
  formatBytes,
  InsufficientDiskError,
} from "./errors.js";
export { sha256OfFile } from "./file-sha256.js";
export { checkFreeSpace, freeBytes } from "./free-space.js";
export type { PartRange, PartState } from "./part-state.js";
export type { DownloadProgress } from "./progress.js";
export type { RetryPolicy } from "./retry.js";
