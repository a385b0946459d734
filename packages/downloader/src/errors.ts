import { RbeeError } from "@rbee/contract";

/** Bytes for people: "1.2 GB", "530 MB", "12 kB" (decimal units, as disks are sold). */
export function formatBytes(n: number): string {
  const units = ["bytes", "kB", "MB", "GB", "TB", "PB"];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${n} bytes` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export interface DownloadErrorOptions {
  /** The status the server answered with, when it answered. */
  httpStatus?: number;
  /** The Hub's `X-Error-Code` (RepoNotFound, EntryNotFound, GatedRepo, ...), when it sent one. */
  hubErrorCode?: string;
  retryAfterSeconds?: number;
  /** Bytes of the file kept on disk for a later resume. */
  bytesOnDisk?: number;
  cause?: unknown;
}

/**
 * A download that failed at the remote end: an error status (401 → 401 "unauthorized", 403 → 403
 * "forbidden", 404 → 404 "not_found", anything else 502 "download_failed") or a network failure
 * that outlasted the retries (502, retryable: running it again resumes).
 */
export class DownloadError extends RbeeError {
  readonly url: string;
  readonly httpStatus: number | undefined;
  readonly hubErrorCode: string | undefined;

  constructor(url: string, message: string, options: DownloadErrorOptions = {}) {
    const s = options.httpStatus;
    const [statusCode, code] =
      s === 401
        ? [401, "unauthorized"]
        : s === 403
          ? [403, "forbidden"]
          : s === 404
            ? [404, "not_found"]
            : [502, "download_failed"];
    super(message, {
      statusCode,
      code,
      retryable: s === undefined || s === 408 || s === 429 || s >= 500,
      retryAfterSeconds: options.retryAfterSeconds,
      details: {
        url,
        http_status: s ?? null,
        ...(options.hubErrorCode ? { hub_error_code: options.hubErrorCode } : {}),
        ...(options.bytesOnDisk !== undefined ? { bytes_on_disk: options.bytesOnDisk } : {}),
      },
      cause: options.cause,
    });
    this.url = url;
    this.httpStatus = s;
    this.hubErrorCode = options.hubErrorCode;
  }

  /** The error for an error status, with what to do about it. */
  static fromStatus(
    url: string,
    httpStatus: number,
    o: { serverMessage?: string; hubErrorCode?: string; retryAfterSeconds?: number; bytesOnDisk?: number } = {},
  ): DownloadError {
    const said = [o.hubErrorCode, o.serverMessage].filter(Boolean).join(": ");
    const head = `downloading ${url} failed: the server answered HTTP ${httpStatus}${said ? ` (${said})` : ""}`;
    let advice: string;
    if (httpStatus === 401) {
      advice =
        "set HF_TOKEN to a Hugging Face access token (https://huggingface.co/settings/tokens), and if the repository is gated, accept its terms on its page first";
    } else if (httpStatus === 403) {
      advice =
        "your token has no access to this file: accept the repository's terms on its Hugging Face page, or use a token with read access to it";
    } else if (httpStatus === 404 || httpStatus === 410) {
      advice = "check the repository id, the revision and the file name";
    } else if (httpStatus === 429) {
      advice = "the server is rate-limiting downloads; wait a little and run it again (it resumes)";
    } else if (httpStatus >= 500) {
      advice = "the server is having trouble; run it again later (it resumes)";
    } else {
      advice = "the server refused the request";
    }
    return new DownloadError(url, `${head}; ${advice}`, { ...o, httpStatus });
  }
}

/** The bytes downloaded do not hash to the sha256 the file was expected to have. */
export class ChecksumMismatchError extends RbeeError {
  readonly expected: string;
  readonly actual: string;

  constructor(url: string, expected: string, actual: string, size: number) {
    super(
      `the file downloaded from ${url} (${formatBytes(size)}) has sha256 ${actual}, but ${expected} was expected; the partial download was deleted, so running it again starts over — if it fails again, the file on the server does not match its listing`,
      {
        statusCode: 502,
        code: "checksum_mismatch",
        retryable: false,
        details: { url, expected_sha256: expected, actual_sha256: actual, size },
      },
    );
    this.expected = expected;
    this.actual = actual;
  }
}

/** Not enough free disk space where the download goes. */
export class InsufficientDiskError extends RbeeError {
  readonly dir: string;
  readonly needBytes: number;
  readonly freeBytes: number;

  constructor(dir: string, needBytes: number, freeBytes: number) {
    super(
      `not enough disk space in ${dir}: the download needs ${formatBytes(needBytes)} more but only ${formatBytes(freeBytes)} is free; free up ${formatBytes(needBytes - freeBytes)} there, or move rbee's cache to a larger disk with RBEE_CACHE_DIR`,
      {
        statusCode: 507,
        code: "insufficient_disk",
        type: "server_error",
        retryable: false,
        details: { dir, need_bytes: needBytes, free_bytes: freeBytes },
      },
    );
    this.dir = dir;
    this.needBytes = needBytes;
    this.freeBytes = freeBytes;
  }
}
