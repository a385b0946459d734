import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { sendFileBytes, Throttle } from "./file-response.js";
import { advertisedSha256, modelInfoJson, type RepoState, treeJson } from "./hub-api.js";
import { defaultRevision, type HubFileEntry, nextRevision, prepareHubFile } from "./hub-files.js";
import type { HubFaults, HubFile, HubRequestRecord, HubServer, HubServerOptions, HubStats } from "./hub-types.js";

/** How long a signed CDN link stays valid (the Hub's are about an hour). */
const CDN_LINK_SECONDS = 3600;

/** Headers the Hub lets browsers read, sent on every answer as the Hub does. */
const EXPOSE_HEADERS =
  "X-Repo-Commit,X-Request-Id,X-Error-Code,X-Error-Message,X-Total-Count,ETag,Link,Accept-Ranges,Content-Range,X-Linked-Size,X-Linked-ETag";

interface CdnBlob {
  repo: string;
  file: HubFileEntry;
}

function contentType(path: string): string {
  const lower = path.toLowerCase();
  if (lower.endsWith(".json")) return "application/json; charset=utf-8";
  if (lower.endsWith(".md") || lower.endsWith(".txt")) return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

/** Splits "a/b%2Fc" into decoded segments. */
function segments(pathname: string): string[] {
  return pathname
    .split("/")
    .filter((s) => s !== "")
    .map((s) => decodeURIComponent(s));
}

/**
 * A local stand-in for the Hugging Face Hub (a fixture that replays its documented HTTP protocol,
 * as huggingface_hub's file_download.py and hf_api.py use it), with switches for the failures a
 * downloader must survive. Routes:
 *
 * - `GET /api/models/{owner}/{name}[/revision/{rev}]` → ModelInfo (`?blobs=true` adds sizes and LFS info)
 * - `GET /api/models/{owner}/{name}/tree/{rev}[/{dir}][?recursive=true]` → files and folders
 * - `HEAD|GET /{owner}/{name}/resolve/{rev}/{path}` → LFS files: 302 to a signed CDN link with
 *   `X-Repo-Commit`, `X-Linked-Etag`, `X-Linked-Size`; small files: their bytes with `X-Repo-Commit`, `ETag`
 * - `HEAD|GET /cdn/repos/{key}/{sha256}?Expires=&Signature=` → the bytes, `Accept-Ranges`, `Range`
 *
 * Errors carry the Hub's `X-Error-Code` (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo)
 * and a JSON `{"error"}` body. `rev` is `main` or the repo's commit.
 */
export async function startHubServer(options: HubServerOptions): Promise<HubServer> {
  const lfsThreshold = options.lfsThreshold ?? 10_000;
  const host = options.host ?? "127.0.0.1";
  const secret = randomBytes(16);
  const repos = new Map<string, RepoState>();
  const cdnBlobs = new Map<string, CdnBlob>();
  const served = new Map<string, number>();
  const requests: HubRequestRecord[] = [];
  const faults: HubFaults = {};
  const throttle = new Throttle();

  const cdnKey = (repo: string, file: HubFileEntry) =>
    createHmac("sha256", secret).update(`${repo}\n${file.path}\n${file.sha256}`).digest("hex").slice(0, 16);
  const register = (repo: string, file: HubFileEntry) => {
    if (file.lfs) cdnBlobs.set(cdnKey(repo, file), { repo, file });
  };

  for (const [id, repo] of Object.entries(options.repos)) {
    if (!/^[\w.-]+\/[\w.-]+$/.test(id)) throw new Error(`hub repo id '${id}' must be owner/name`);
    const entries = await Promise.all(
      Object.entries(repo.files).map(([path, file]) => prepareHubFile(path, file, lfsThreshold)),
    );
    const now = new Date();
    const state: RepoState = {
      id,
      revision: repo.revision ?? defaultRevision(id),
      gated: repo.gated ?? false,
      files: new Map(entries.map((e) => [e.path, e])),
      createdAt: now,
      lastModified: now,
    };
    if (!/^[0-9a-f]{40}$/.test(state.revision)) throw new Error(`hub repo ${id}: revision must be 40 hex digits`);
    repos.set(id, state);
    for (const e of entries) register(id, e);
  }

  const stats: HubStats = {
    bytesServed(file: string): number {
      const exact = served.get(file);
      if (exact !== undefined) return exact;
      let sum = 0;
      for (const [key, n] of served)
        if (key.endsWith(`/${file}`) && key.split("/").length - 2 === file.split("/").length) sum += n;
      return sum;
    },
    requests,
    reset() {
      served.clear();
      requests.length = 0;
    },
  };

  let hubOrigin = "";
  let cdnOrigin = "";

  const sign = (path: string, expires: number) =>
    createHmac("sha256", secret).update(`${path}\n${expires}`).digest("hex");

  function sendJson(
    res: ServerResponse,
    record: HubRequestRecord,
    status: number,
    body: unknown,
    headers: Record<string, string | number> = {},
  ): void {
    record.status = status;
    const text = JSON.stringify(body);
    res.writeHead(status, {
      "content-type": "application/json; charset=utf-8",
      "content-length": Buffer.byteLength(text),
      "access-control-expose-headers": EXPOSE_HEADERS,
      ...headers,
    });
    res.end(res.req.method === "HEAD" ? undefined : text);
  }

  function sendHubError(
    res: ServerResponse,
    record: HubRequestRecord,
    status: number,
    code: string | undefined,
    message: string,
    headers: Record<string, string | number> = {},
  ): void {
    sendJson(
      res,
      record,
      status,
      { error: message },
      { ...(code ? { "x-error-code": code } : {}), "x-error-message": message, ...headers },
    );
  }

  function injectedStatus(res: ServerResponse, record: HubRequestRecord): boolean {
    const s = faults.status;
    if (!s) return false;
    if (s.times !== undefined) {
      if (s.times <= 0) {
        delete faults.status;
        return false;
      }
      s.times -= 1;
      if (s.times === 0) delete faults.status;
    }
    const headers: Record<string, string | number> = {};
    if (s.retryAfter !== undefined) {
      headers["retry-after"] = s.retryAfter;
      if (s.code === 429) {
        // the Hub's rate-limit headers (IETF draft), as huggingface_hub parses them
        headers.ratelimit = `"api";r=0;t=${s.retryAfter}`;
        headers["ratelimit-policy"] = `"fixed window";"api";q=500;w=300`;
      }
    }
    const messages: Record<number, [string | undefined, string]> = {
      401: ["GatedRepo", "Invalid credentials in Authorization header"],
      403: [undefined, "Forbidden: you do not have access to this resource"],
      404: ["EntryNotFound", "Entry not found"],
      429: [undefined, "Too Many Requests: you have reached your 'api' rate limit"],
      500: [undefined, "Internal Error"],
      503: [undefined, "Service Unavailable"],
    };
    const [code, message] = messages[s.code] ?? [undefined, `HTTP ${s.code}`];
    sendHubError(res, record, s.code, code, message, headers);
    return true;
  }

  function findRepo(res: ServerResponse, record: HubRequestRecord, owner: string, name: string) {
    const repo = repos.get(`${owner}/${name}`);
    if (!repo) sendHubError(res, record, 404, "RepoNotFound", "Repository not found");
    return repo;
  }

  function checkRevision(res: ServerResponse, record: HubRequestRecord, repo: RepoState, rev: string): boolean {
    if (rev === "main" || rev === repo.revision) return true;
    sendHubError(res, record, 404, "RevisionNotFound", `Invalid rev id: ${rev}`);
    return false;
  }

  async function handle(req: IncomingMessage, res: ServerResponse, origin: "hub" | "cdn"): Promise<void> {
    const url = new URL(req.url ?? "/", "http://hub.invalid");
    const record: HubRequestRecord = {
      method: req.method ?? "GET",
      path: url.pathname,
      ...(req.headers.range ? { range: req.headers.range } : {}),
      status: 0,
      authorized: req.headers.authorization !== undefined,
    };
    requests.push(record);
    if (injectedStatus(res, record)) return;
    const method = req.method ?? "GET";
    if (method !== "GET" && method !== "HEAD") {
      sendHubError(res, record, 405, undefined, `${method} is not allowed here`, { allow: "GET, HEAD" });
      return;
    }
    const parts = segments(url.pathname);

    if (parts[0] === "cdn") {
      await serveCdn(req, res, record, url, parts);
      return;
    }
    if (origin === "cdn") {
      sendHubError(res, record, 404, undefined, "Not Found");
      return;
    }

    // /api/models/{owner}/{name}[/revision/{rev} | /tree/{rev}[/{dir}]]
    if (parts[0] === "api" && parts[1] === "models" && parts.length >= 4) {
      const repo = findRepo(res, record, parts[2]!, parts[3]!);
      if (!repo) return;
      const rest = parts.slice(4);
      const wrongSha = faults.wrongSha256 ?? false;
      if (rest.length === 0 || (rest[0] === "revision" && rest.length === 2)) {
        if (rest.length === 2 && !checkRevision(res, record, repo, rest[1]!)) return;
        const blobs = url.searchParams.get("blobs") === "true";
        sendJson(res, record, 200, modelInfoJson(repo, { blobs, wrongSha }));
        return;
      }
      if (rest[0] === "tree" && rest.length >= 2) {
        if (!checkRevision(res, record, repo, rest[1]!)) return;
        const dir = rest.slice(2).join("/");
        const recursive = ["true", "1"].includes(url.searchParams.get("recursive") ?? "");
        const entries = treeJson(repo, dir, { recursive, wrongSha });
        if (!entries) {
          sendHubError(res, record, 404, "EntryNotFound", `${dir} does not exist on "${rest[1]}"`);
          return;
        }
        sendJson(res, record, 200, entries);
        return;
      }
    }

    // /{owner}/{name}/resolve/{rev}/{path}
    if (parts.length >= 5 && parts[2] === "resolve") {
      await serveResolve(req, res, record, parts);
      return;
    }
    sendHubError(res, record, 404, undefined, "Not Found");
  }

  async function serveResolve(
    req: IncomingMessage,
    res: ServerResponse,
    record: HubRequestRecord,
    parts: string[],
  ): Promise<void> {
    const repo = findRepo(res, record, parts[0]!, parts[1]!);
    if (!repo || !checkRevision(res, record, repo, parts[3]!)) return;
    const auth = req.headers.authorization;
    if (repo.gated && options.token !== undefined && auth !== `Bearer ${options.token}`) {
      const message =
        auth === undefined
          ? `Access to model ${repo.id} is restricted. You must have access to it and be authenticated to access it. Please log in.`
          : "Invalid credentials in Authorization header";
      sendHubError(res, record, 401, "GatedRepo", message);
      return;
    }
    const path = parts.slice(4).join("/");
    const file = repo.files.get(path);
    if (!file) {
      sendHubError(res, record, 404, "EntryNotFound", "Entry not found");
      return;
    }
    const commit = { "x-repo-commit": repo.revision, "access-control-expose-headers": EXPOSE_HEADERS };
    if (!file.lfs) {
      await sendFileBytes(
        req,
        res,
        file,
        { ...commit, "content-type": contentType(path) },
        `"${file.gitOid}"`,
        fileContext(record, `${repo.id}/${file.path}`),
      );
      return;
    }
    const sha = advertisedSha256(file, faults.wrongSha256 ?? false);
    const cdnPath = `/cdn/repos/${cdnKey(repo.id, file)}/${file.sha256}`;
    const expires = Math.floor(Date.now() / 1000) + CDN_LINK_SECONDS;
    const name = path.split("/").pop() ?? path;
    const query = new URLSearchParams({
      "response-content-disposition": `inline; filename*=UTF-8''${encodeURIComponent(name)}; filename="${name}";`,
      Expires: String(expires),
      Signature: sign(cdnPath, expires),
    });
    const location = `${cdnOrigin}${cdnPath}?${query}`;
    const body = `Found. Redirecting to ${location}`;
    record.status = 302;
    res.writeHead(302, {
      ...commit,
      location,
      "content-type": "text/plain; charset=utf-8",
      "content-length": Buffer.byteLength(body),
      "accept-ranges": "bytes",
      "x-linked-size": file.size,
      "x-linked-etag": `"${sha}"`,
      etag: `"${sha}"`,
      vary: "Origin, Accept",
    });
    res.end(req.method === "HEAD" ? undefined : body);
  }

  async function serveCdn(
    req: IncomingMessage,
    res: ServerResponse,
    record: HubRequestRecord,
    url: URL,
    parts: string[],
  ): Promise<void> {
    const key = parts[2] ?? "";
    const blob = parts[1] === "repos" && parts.length === 4 ? cdnBlobs.get(key) : undefined;
    if (!blob || blob.file.sha256 !== parts[3]) {
      sendHubError(res, record, 404, undefined, "NoSuchKey: the specified key does not exist");
      return;
    }
    const expires = Number(url.searchParams.get("Expires"));
    const given = Buffer.from(url.searchParams.get("Signature") ?? "", "hex");
    const wanted = Buffer.from(sign(url.pathname, expires), "hex");
    if (given.length !== wanted.length || !timingSafeEqual(given, wanted) || expires * 1000 < Date.now()) {
      sendHubError(res, record, 403, undefined, "AccessDenied: the link is invalid or has expired");
      return;
    }
    const disposition = url.searchParams.get("response-content-disposition");
    const sha = advertisedSha256(blob.file, faults.wrongSha256 ?? false);
    await sendFileBytes(
      req,
      res,
      blob.file,
      {
        "content-type": "application/octet-stream",
        "cache-control": "public, max-age=604800, immutable",
        "x-cache": "Hit from rbee test CDN",
        ...(disposition ? { "content-disposition": disposition } : {}),
      },
      `"${sha}"`,
      fileContext(record, `${blob.repo}/${blob.file.path}`),
    );
  }

  function fileContext(record: HubRequestRecord, key: string) {
    return {
      faults,
      throttle,
      count(n: number) {
        served.set(key, (served.get(key) ?? 0) + n);
      },
      status(code: number) {
        record.status = code;
      },
    };
  }

  const listener = (origin: "hub" | "cdn") => (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res, origin).catch((err: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: `test hub failed: ${(err as Error).message}` }));
      } else res.destroy();
    });
  };
  const hubServer = createServer(listener("hub"));
  const cdnServer = options.sameOriginCdn ? undefined : createServer(listener("cdn"));
  hubOrigin = await listen(hubServer, host);
  cdnOrigin = cdnServer ? await listen(cdnServer, host) : hubOrigin;

  return {
    url: hubOrigin,
    cdnUrl: cdnOrigin,
    faults,
    stats,
    sha256(repo: string, path: string): string {
      const file = repos.get(repo)?.files.get(path);
      if (!file) throw new Error(`no file ${path} in hub repo ${repo}`);
      return file.sha256;
    },
    revision(repo: string): string {
      const r = repos.get(repo);
      if (!r) throw new Error(`no hub repo ${repo}`);
      return r.revision;
    },
    async setFile(repo: string, path: string, file: HubFile): Promise<void> {
      const r = repos.get(repo);
      if (!r) throw new Error(`no hub repo ${repo}`);
      const entry = await prepareHubFile(path, file, lfsThreshold);
      r.files.set(path, entry);
      r.revision = nextRevision(r.revision, path, entry.sha256);
      r.lastModified = new Date();
      register(repo, entry);
    },
    async close(): Promise<void> {
      await Promise.all([close(hubServer), cdnServer ? close(cdnServer) : undefined]);
    },
  };
}

function listen(server: Server, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => {
      server.off("error", reject);
      const addr = server.address() as AddressInfo;
      const h = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
      resolve(`http://${h}:${addr.port}`);
    });
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
