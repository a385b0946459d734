import { DEFAULT_HF_ENDPOINT } from "./hf-env.js";
import { HfAuthError, HfNotFoundError, HfProtocolError, HfUnavailableError } from "./hf-errors.js";
import { assertRepoId, assertRepoPath, assertRevision } from "./repo-names.js";

/** A file in a repo, as the tree API lists it. */
export interface HfFile {
  /** Relative to the repo root, '/'-separated. */
  path: string;
  size: number;
  /** The sha256 of an LFS file (its LFS oid); absent for a file kept in git itself. */
  sha256?: string;
  lfs: boolean;
}

/** Where a file's bytes are, and what the Hub says about them. */
export interface HfResolvedFile {
  /** The URL to download from: the CDN URL the Hub redirects to, or the resolve URL when it serves the file itself. */
  url: string;
  /** `X-Linked-Size` (the file, not the redirect), else Content-Length. */
  size?: number;
  /** `X-Linked-Etag` when it is a sha256 (LFS files). */
  sha256?: string;
  /** The file's ETag (X-Linked-Etag, else ETag), unquoted: what a resumed download checks with If-Range. */
  etag?: string;
  /** `X-Repo-Commit`: the commit the revision resolved to. */
  commit?: string;
}

export interface HfClientOptions {
  /** The Hub's base URL (hfEndpoint()); default https://huggingface.co. */
  endpoint?: string;
  /** Sent as `Authorization: Bearer <token>` to the Hub (never to the CDN it redirects to). */
  token?: string;
  /** Gives up on a request (a page of a file list, a HEAD) that takes longer. Default 30 s. */
  timeoutMs?: number;
}

const MAX_REDIRECTS = 10;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const SHA256 = /^[0-9a-f]{64}$/;

/**
 * A client of the Hugging Face Hub's HTTP API (or a mirror at HF_ENDPOINT): lists a repo's files,
 * resolves a file to the URL its bytes come from, and says clearly why not (HfAuthError,
 * HfNotFoundError for a repo, revision or file, HfUnavailableError naming HF_ENDPOINT).
 */
export class HfClient {
  readonly endpoint: string;
  readonly #token: string | undefined;
  readonly #timeoutMs: number;

  constructor(options: HfClientOptions = {}) {
    this.endpoint = (options.endpoint ?? DEFAULT_HF_ENDPOINT).replace(/\/+$/, "");
    this.#token = options.token || undefined;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** Headers that authenticate a request to the Hub (empty without a token), for the downloader and header reads. */
  authHeaders(): Record<string, string> {
    return this.#token ? { authorization: `Bearer ${this.#token}` } : {};
  }

  /** `<endpoint>/<repo>/resolve/<revision>/<path>`, each part URL-encoded. */
  fileUrl(repo: string, revision: string, path: string): string {
    assertRepoId(repo);
    assertRevision(revision);
    assertRepoPath(path);
    return `${this.endpoint}/${repo}/resolve/${encodeURIComponent(revision)}/${path.split("/").map(encodeURIComponent).join("/")}`;
  }

  /**
   * Every file of a repo at a revision (the tree API, recursive, following `Link: <…>; rel="next"`
   * pages), directories left out.
   */
  async listFiles(repo: string, revision = "main", signal?: AbortSignal): Promise<HfFile[]> {
    assertRepoId(repo);
    assertRevision(revision);
    const files: HfFile[] = [];
    let next: string | undefined =
      `${this.endpoint}/api/models/${repo}/tree/${encodeURIComponent(revision)}?recursive=true`;
    for (let page = 0; next !== undefined; page++) {
      if (page > 10_000) throw new HfProtocolError(`the file list of ${repo} does not end`);
      const { res } = await this.#request(next, "GET", { repo, revision }, signal);
      const body = await res.text();
      let entries: unknown;
      try {
        entries = JSON.parse(body);
      } catch {
        throw new HfProtocolError(`the Hub at ${this.endpoint} sent a file list of ${repo} that is not JSON`);
      }
      if (!Array.isArray(entries))
        throw new HfProtocolError(`the Hub at ${this.endpoint} sent a file list of ${repo} that is not a list`);
      for (const e of entries) {
        const file = toHfFile(e);
        if (file) files.push(file);
      }
      next = nextLink(res.headers.get("link"), next);
    }
    return files;
  }

  /**
   * Where a file's bytes are: a HEAD on its resolve URL, following the Hub's own (same-origin)
   * redirects, such as a renamed repo's, but not the one to the CDN, whose URL is answered with the
   * file's size, sha256, ETag and commit from the `X-Linked-*` and `X-Repo-Commit` headers.
   */
  async resolveFile(repo: string, revision: string, path: string, signal?: AbortSignal): Promise<HfResolvedFile> {
    const start = this.fileUrl(repo, revision, path);
    const { res, url } = await this.#request(start, "HEAD", { repo, revision, path }, signal, "same-origin");
    const h = res.headers;
    const linkedEtag = unquote(h.get("x-linked-etag"));
    const etag = linkedEtag ?? unquote(h.get("etag"));
    const linkedSize = h.get("x-linked-size");
    const length = REDIRECTS.has(res.status) ? null : h.get("content-length");
    const size = Number(linkedSize ?? length ?? Number.NaN);
    const location = h.get("location");
    const out: HfResolvedFile = {
      url: REDIRECTS.has(res.status) && location !== null ? new URL(location, url).toString() : url,
    };
    if (Number.isSafeInteger(size) && size >= 0) out.size = size;
    if (etag !== undefined) out.etag = etag;
    if (linkedEtag !== undefined && SHA256.test(linkedEtag)) out.sha256 = linkedEtag;
    const commit = h.get("x-repo-commit");
    if (commit) out.commit = commit;
    return out;
  }

  /**
   * A request to the Hub, following redirects by hand: all of them (a renamed repo) for "all",
   * only those within the Hub's origin for "same-origin" (the answer is then the redirect to the
   * CDN). Authorization never leaves the Hub's origin. Error statuses become HfErrors.
   */
  async #request(
    url: string,
    method: "GET" | "HEAD",
    what: { repo: string; revision: string; path?: string },
    signal: AbortSignal | undefined,
    follow: "all" | "same-origin" = "all",
  ): Promise<{ res: Response; url: string }> {
    const origin = new URL(this.endpoint).origin;
    let current = url;
    for (let hop = 0; ; hop++) {
      const sameOrigin = new URL(current).origin === origin;
      const headers: Record<string, string> = {
        accept: "application/json",
        "accept-encoding": "identity",
        ...(sameOrigin ? this.authHeaders() : {}),
      };
      let res: Response;
      try {
        res = await fetch(current, {
          method,
          headers,
          redirect: "manual",
          signal: AbortSignal.any([AbortSignal.timeout(this.#timeoutMs), ...(signal ? [signal] : [])]),
        });
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        throw this.#unreachable(err);
      }
      const location = res.headers.get("location");
      if (REDIRECTS.has(res.status) && location !== null) {
        const next = new URL(location, current);
        if (follow === "same-origin" && next.origin !== origin) return { res, url: current };
        await res.body?.cancel().catch(() => undefined);
        if (hop >= MAX_REDIRECTS)
          throw new HfProtocolError(`the Hub redirected ${url} more than ${MAX_REDIRECTS} times`);
        current = next.toString();
        continue;
      }
      if (res.status >= 400) {
        await res.body?.cancel().catch(() => undefined);
        throw this.#statusError(res, what);
      }
      return { res, url: current };
    }
  }

  #statusError(res: Response, what: { repo: string; revision: string; path?: string }): Error {
    const { repo, revision, path } = what;
    const status = res.status;
    const code = res.headers.get("x-error-code");
    const said = res.headers.get("x-error-message");
    const hub = `Hugging Face (${this.endpoint})`;
    const page = `${this.endpoint}/${repo}`;
    if (code === "GatedRepo") {
      return new HfAuthError(
        this.#token
          ? `${repo} is a gated repo and the account of HF_TOKEN has not been granted access: accept its terms at ${page}, then try again`
          : `${repo} is a gated repo: this repo needs a token: set HF_TOKEN (and accept its terms on the Hub at ${page})`,
        status,
        repo,
      );
    }
    if (code === "RepoNotFound" || (status === 404 && code === null && path === undefined)) {
      const hint = this.#token ? "" : "; if it is private, set HF_TOKEN";
      return new HfNotFoundError(`${hub} has no model repo ${repo}${hint}`, "repo", repo);
    }
    if (code === "RevisionNotFound") {
      return new HfNotFoundError(`${repo} has no revision '${revision}' (a branch, tag or commit)`, "revision", repo);
    }
    if (code === "EntryNotFound" || status === 404) {
      return new HfNotFoundError(`${repo} has no file '${path ?? ""}' at revision ${revision}`, "file", repo, path);
    }
    if (status === 401) {
      return new HfAuthError(
        this.#token
          ? `${hub} refused the token in HF_TOKEN for ${repo} (401): check that it is valid and allowed to read this repo`
          : `${hub} answered 401 for ${repo}: this repo needs a token: set HF_TOKEN (and accept its terms on the Hub)`,
        status,
        repo,
      );
    }
    if (status === 403) {
      return new HfAuthError(
        `${hub} answered 403 for ${repo}: ${this.#token ? "the token in HF_TOKEN may not read it" : "it needs a token: set HF_TOKEN"} (and accept its terms on the Hub at ${page})${said ? `; the Hub says: ${said}` : ""}`,
        status,
        repo,
      );
    }
    if (status === 429 || status >= 500) {
      return new HfUnavailableError(
        `${hub} answered ${status} for ${repo}${said ? ` (${said})` : ""}; try again later, or set HF_ENDPOINT to a mirror`,
        this.endpoint,
        status,
      );
    }
    return new HfProtocolError(`${hub} answered ${status} for ${repo}${said ? `: ${said}` : ""}`, { status, repo });
  }

  #unreachable(err: unknown): HfUnavailableError {
    const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
    const reason =
      e?.name === "TimeoutError"
        ? `no answer within ${this.#timeoutMs / 1000} s`
        : (e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err));
    return new HfUnavailableError(
      `cannot reach Hugging Face at ${this.endpoint} (HF_ENDPOINT): ${reason}; check the network, or set HF_ENDPOINT to a reachable mirror`,
      this.endpoint,
      undefined,
      err,
    );
  }
}

/** A tree entry as an HfFile; undefined for a directory or anything unexpected. */
function toHfFile(e: unknown): HfFile | undefined {
  if (typeof e !== "object" || e === null) return undefined;
  const entry = e as { type?: unknown; path?: unknown; size?: unknown; lfs?: { oid?: unknown; size?: unknown } | null };
  if (entry.type !== "file" || typeof entry.path !== "string") return undefined;
  const lfs = typeof entry.lfs === "object" && entry.lfs !== null;
  const size = Number(lfs && entry.lfs?.size !== undefined ? entry.lfs.size : entry.size);
  const file: HfFile = { path: entry.path, size: Number.isFinite(size) ? size : 0, lfs };
  const oid = entry.lfs?.oid;
  if (typeof oid === "string" && SHA256.test(oid)) file.sha256 = oid;
  return file;
}

/** The `rel="next"` URL of a Link header, resolved against the current page. */
function nextLink(link: string | null, current: string): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(",")) {
    const m = /<([^>]*)>\s*;(.*)$/.exec(part.trim());
    if (m && /\brel="?next"?/.test(m[2] ?? "")) return new URL(m[1] ?? "", current).toString();
  }
  return undefined;
}

function unquote(value: string | null): string | undefined {
  if (value === null || value === "") return undefined;
  return value.replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
}
