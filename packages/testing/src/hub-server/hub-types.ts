/** A file of a repository on the test hub: served from disk (generated GGUFs), or from memory. */
export type HubFile = { path: string } | { content: Buffer | string };

/** A model repository on the test hub. */
export interface HubRepo {
  /** The commit sha (40 hex) the repo is at; default a fixed one derived from the repo id. */
  revision?: string;
  /** Gated repos serve their files only to `Authorization: Bearer <token>` (their metadata stays public). */
  gated?: boolean;
  /** Path in the repo → where its bytes come from. */
  files: Record<string, HubFile>;
}

/** Failures the test hub injects, changed at run time (`hub.faults.ignoreRange = true`). */
export interface HubFaults {
  /** Close the socket after this many body bytes of every file response (resolve or CDN), until cleared. */
  dropAfterBytes?: number;
  /** With dropAfterBytes: drop one response only, then clear dropAfterBytes. */
  dropOnce?: boolean;
  /**
   * Flip the file's byte at this offset in the next response that carries it, then clear itself: bytes
   * corrupted in flight (the advertised sha256 stays right; a small ranged read of the header before
   * it is not hit).
   */
  corruptByteAt?: number;
  /** Advertise a wrong sha256 (tree `lfs.oid`, siblings, `X-Linked-Etag`, CDN `ETag`); the bytes stay right. */
  wrongSha256?: boolean;
  /** Answer every request (API, resolve, CDN) with this status while `times` lasts (forever without it). */
  status?: { code: 401 | 403 | 404 | 429 | 500 | 503; times?: number; retryAfter?: number };
  /** Ignore `Range` on file responses: 200 with the whole file. */
  ignoreRange?: boolean;
  /** Throttle the body bytes of all file responses together to this rate (one shared link). */
  bytesPerSecond?: number;
}

/** One request the test hub answered. */
export interface HubRequestRecord {
  method: string;
  /** The path without the query string. */
  path: string;
  range?: string;
  status: number;
  /** Whether the request carried an Authorization header (a CDN request should not). */
  authorized: boolean;
}

export interface HubStats {
  /** Body bytes of file responses written to sockets for `file`: "owner/name/path/in/repo", or a path in repo (summed over repos). */
  bytesServed(file: string): number;
  /** Every request, in arrival order. */
  requests: HubRequestRecord[];
  reset(): void;
}

/** A running test hub; see startHubServer. */
export interface HubServer {
  /** The hub's origin, e.g. http://127.0.0.1:41234 (use it as HF_ENDPOINT). */
  url: string;
  /** The CDN's origin that LFS downloads redirect to (another port, so a cross-origin redirect, as on the Hub). */
  cdnUrl: string;
  faults: HubFaults;
  stats: HubStats;
  /** The sha256 (lowercase hex) of a file's real bytes. */
  sha256(repo: string, path: string): string;
  /** The commit a repo is at. */
  revision(repo: string): string;
  /** Adds or replaces a file: a new commit, so `main` moves and the file's ETag changes. */
  setFile(repo: string, path: string, file: HubFile): Promise<void>;
  close(): Promise<void>;
}

export interface HubServerOptions {
  repos: Record<string, HubRepo>;
  /** When set, gated repos need `Authorization: Bearer <token>`. */
  token?: string;
  /** Files larger than this many bytes (and every .gguf, .safetensors, .bin) are stored in LFS. Default 10 000. */
  lfsThreshold?: number;
  /** Serve the CDN on the hub's own origin instead of a second port. */
  sameOriginCdn?: boolean;
  /** Interface to listen on; default 127.0.0.1. */
  host?: string;
}
