import { readFile } from "node:fs/promises";
import { basename, isAbsolute, join } from "node:path";
import {
  type CatalogEntry,
  catalogIdFor,
  findInHfCache,
  HfClient,
  type HfFile,
  hfEndpoint,
  hfToken,
  type ModelCatalog,
  type ModelRef,
  parseModelRef,
  pickGguf,
  pickRepoFiles,
  safetensorsParameters,
  toHiveModel,
} from "@rbee/catalog";
import {
  type GgufSummary,
  type HiveModel,
  type MemoryEstimate,
  type ModelFormat,
  type ModelInspection,
  ModelNotFoundError,
  type ModelPeer,
  RbeeError,
  SharedModel,
  summarizeHfConfig,
  toRbeeError,
  ValidationError,
} from "@rbee/contract";
import { type DownloadProgress, downloadFiles } from "@rbee/downloader";
import { estimateLlamaCppWorker, type GgufInfo, inspectGguf, readGgufHeader } from "@rbee/gguf";
import { type Logger, requestJson } from "@rbee/server-kit";
import { ModelNotAvailableError } from "./errors.js";
import type { ModelPathPolicy } from "./model-paths.js";

/** A refusal from the Hub, said with what to do about it; other errors pass unchanged. */
function hubError(err: unknown, repo: string): unknown {
  const status = err instanceof RbeeError ? err.statusCode : undefined;
  if (status !== 401 && status !== 403) return err;
  return new RbeeError(
    `${repo} wants a Hugging Face token (HTTP ${status}): set HF_TOKEN for the hive (or log in with huggingface-cli), and accept the model's terms on its Hub page`,
    { statusCode: status, code: "hf_unauthorized", cause: err },
  );
}

/** What a long model operation tells whoever asked for it. */
export interface ProvisionListener {
  narrate?(message: string): void;
  progress?(p: DownloadProgress): void;
}

export interface ProvisionerOptions {
  catalog: ModelCatalog;
  /** `<cache>/tmp`: unfinished downloads (`*.part`). */
  tmpDir: string;
  env: NodeJS.ProcessEnv;
  log: Logger;
  /** The cluster token: what this hive shows the other hives it fetches models from. */
  token?: string;
  /** Which files a request may name as a model; absent: any absolute path (embedding, tests of the catalog). */
  modelPaths?: ModelPathPolicy;
}

/** Why one peer hive did not deliver a model. */
interface PeerMiss {
  peer: ModelPeer;
  code: string;
  message: string;
}

/**
 * No hive on the LAN delivered a model asked for by its catalog id, and there is nowhere else to get
 * it: 404 when none of them has it, else 502 with the first real failure's code (e.g.
 * checksum_mismatch). The message names every peer and what went wrong there.
 */
export class PeerFetchError extends RbeeError {
  constructor(id: string, misses: readonly PeerMiss[]) {
    const failed = misses.find((m) => m.code !== "model_not_found");
    super(
      `model '${id}' is not in this hive's catalog and no other hive delivered it: ${describeMisses(misses)}; ${
        failed
          ? "ask again to retry (a partial fetch resumes)"
          : "download it from its source, e.g. `rbee model download <owner/repo[:file.gguf]>`"
      }`,
      {
        statusCode: failed ? 502 : 404,
        code: failed ? failed.code : "model_not_found",
        param: "model",
        details: {
          model: id,
          peers: misses.map((m) => ({ hive_id: m.peer.hive_id, code: m.code, message: m.message })),
        },
      },
    );
  }
}

function describeMisses(misses: readonly PeerMiss[]): string {
  return misses.map((m) => `hive ${m.peer.hive_id}: ${m.message}`).join("; ");
}

/** A file name a peer lists: no directories, no dots of its own. */
function isPlainFileName(name: string): boolean {
  return name !== "." && name !== ".." && !/[/\\\0]/.test(name) && basename(name) === name;
}

/** A peer hive that stops sending gives way to the next one (or the model's source) after a few quick tries. */
const PEER_RETRY = { attempts: 3, baseDelayMs: 250, maxDelayMs: 2_000 };
/** On a LAN, this long without a byte means the peer is gone. */
const PEER_STALL_MS = 15_000;
/**
 * How long a peer may take to describe a model: the first request for a file registered in place
 * hashes it there (about 1.5 s per GiB on a slow core), so this is generous.
 */
const PEER_DESCRIBE_TIMEOUT_MS = 10 * 60_000;
const MiB = 2 ** 20;

/** A model file as the provisioner plans it: where it comes from and where it goes. */
interface PlannedFile {
  repoPath: string;
  size: number;
  sha256?: string;
  /** Set when the file is already on this machine (the Hugging Face cache). */
  localPath?: string;
}

interface Plan {
  /** `hf-repo`: a Hugging Face repo directory, its files kept at their paths in the repo. */
  format?: ModelFormat;
  id: string;
  name: string;
  repo: string;
  revision: string;
  files: PlannedFile[];
  picked?: string;
}

const NOT_IN_CATALOG =
  "no hive's catalog has it; name a Hugging Face model (owner/repo[:file.gguf]), a short name, or the path of a .gguf file, or see `rbee model ls`";

export function ggufSummary(info: GgufInfo): GgufSummary {
  return {
    architecture: info.architecture,
    name: info.name,
    parameter_count: info.parameter_count,
    quantization: info.quantization,
    context_length: info.context_length,
    block_count: info.block_count,
    embedding_length: info.embedding_length,
    head_count: info.head_count,
    head_count_kv: info.head_count_kv,
    key_length: info.key_length,
    value_length: info.value_length,
    vocab_size: info.vocab_size,
    feed_forward_length: info.feed_forward_length,
    head_count_kv_per_layer: info.head_count_kv_per_layer,
    expert_count: info.expert_count,
    expert_used_count: info.expert_used_count,
    expert_feed_forward_length: info.expert_feed_forward_length,
    sliding_window: info.sliding_window,
    sliding_window_layers: info.sliding_window_layers,
    token_embd_bytes: info.token_embd_bytes,
    output_tied: info.output_tied,
    tensor_bytes: info.tensor_bytes,
    file_bytes: info.file_bytes,
  };
}

/**
 * What a llama.cpp worker needs for the model, on a CPU (`estimate`) and with every layer on a GPU
 * (`gpu_estimate`: the backend's own context counts, the token embedding stays in host memory).
 */
function toEstimates(
  info: GgufInfo,
  ctxSize: number | undefined,
  parallel: number | undefined,
): { estimate: MemoryEstimate; gpu_estimate: MemoryEstimate } {
  const facts = { size_bytes: info.file_bytes, gguf: ggufSummary(info) };
  const o = { contextSize: ctxSize, parallel };
  return {
    estimate: estimateLlamaCppWorker(facts, { ...o, deviceKind: "cpu" }),
    gpu_estimate: estimateLlamaCppWorker(facts, { ...o, deviceKind: "cuda" }),
  };
}

/**
 * The hive's provisioner: turns a model reference into a catalog entry that a worker can load.
 * Local files and files in the Hugging Face cache are used in place; others are downloaded from the
 * Hub (HF_ENDPOINT, HF_TOKEN) into `<cache>/models/<id>/`, resumably, checked against the Hub's
 * sha256. Two requests for the same model share one download.
 */
export class Provisioner {
  #o: ProvisionerOptions;
  #inFlight = new Map<string, Promise<HiveModel>>();

  constructor(options: ProvisionerOptions) {
    this.#o = options;
  }

  #client(): HfClient {
    return new HfClient({ endpoint: hfEndpoint(this.#o.env), token: hfToken(this.#o.env) });
  }

  /**
   * Finds or fetches a model; resolves once it is Available in the catalog. A model this hive lacks
   * is fetched first from `peers` (other hives that hold it, by its catalog id), then from its
   * source; a model named only by its catalog id has no source but the peers.
   */
  async provision(
    ref: string,
    listener: ProvisionListener = {},
    signal?: AbortSignal,
    peers: readonly ModelPeer[] = [],
    anyPath = false,
    format?: ModelFormat,
  ): Promise<HiveModel> {
    if (format === "hf-repo") return this.#provisionRepo(ref, listener, signal);
    const parsed = parseModelRef(ref);
    if (parsed.kind === "local") {
      await this.#checkPath(ref, parsed.path, anyPath);
      return this.#withGguf(await this.#o.catalog.registerLocalFile(parsed.path));
    }
    if (parsed.kind === "id") {
      const entry = await this.#o.catalog.get(parsed.id);
      if (entry?.artifact.status === "Available") return toHiveModel(entry);
      if (peers.length > 0)
        return this.#once(parsed.id, listener, async () => {
          const got = await this.#fromPeers(parsed.id, peers, listener, signal);
          if ("model" in got) return got.model;
          throw new PeerFetchError(parsed.id, got.misses);
        });
      if (entry === undefined)
        throw new ModelNotFoundError(
          ref,
          "it is not in this hive's catalog; download it with `rbee model download <owner/repo[:file.gguf]>`",
        );
      throw new RbeeError(
        `model ${parsed.id} is not available: ${entry.artifact.error ?? entry.artifact.status}; download it again to resume or repair it`,
        {
          statusCode: 409,
          code: "model_not_available",
        },
      );
    }
    // a file named in the reference has its id at once; a repo needs the Hub to say which file
    const known = parsed.path === undefined ? undefined : catalogIdFor(parsed, parsed.path);
    if (known !== undefined) {
      const existing = await this.#o.catalog.get(known);
      if (existing?.artifact.status === "Available") return toHiveModel(existing);
      // the LAN before the Hub: peers are asked before the Hub is even listed
      if (peers.length > 0)
        return this.#once(known, listener, async () => {
          const got = await this.#fromPeers(known, peers, listener, signal);
          if ("model" in got) return got.model;
          this.#fallBack(known, got.misses, listener);
          return this.#download(await this.#plan(parsed), listener, signal);
        });
    }
    const plan = await this.#plan(parsed);
    const existing = await this.#o.catalog.get(plan.id);
    if (existing?.artifact.status === "Available") return toHiveModel(existing);
    return this.#once(plan.id, listener, async () => {
      if (peers.length > 0) {
        const got = await this.#fromPeers(plan.id, peers, listener, signal);
        if ("model" in got) return got.model;
        this.#fallBack(plan.id, got.misses, listener);
      }
      return this.#download(plan, listener, signal);
    });
  }

  /**
   * A Hugging Face repo directory (`owner/repo[@revision]`) for an engine that loads safetensors:
   * its config.json, safetensors weights and tokenizer files (pickRepoFiles), downloaded like a GGUF
   * (resumable, sha256-checked for the LFS files, the HF cache used in place) into
   * `<cache>/models/<id>/`, keeping their names. The entry's first file is config.json; it records
   * `format: "hf-repo"` and what the config says (`hf_config`, with the parameters counted from the
   * safetensors headers). A catalog id must name such an entry.
   */
  async #provisionRepo(ref: string, listener: ProvisionListener, signal?: AbortSignal): Promise<HiveModel> {
    const parsed = parseModelRef(ref);
    if (parsed.kind === "id") {
      const entry = await this.#o.catalog.get(parsed.id);
      if (entry === undefined)
        throw new ModelNotFoundError(ref, "it is not in this hive's catalog; name its Hugging Face repo (owner/repo)");
      if (entry.artifact.format !== "hf-repo")
        throw new ValidationError(
          `model ${entry.id} is a GGUF file, not a Hugging Face repo: serve it with the llm or llama-server type, or name a safetensors repo (owner/repo)`,
          "model",
        );
      if (entry.artifact.status !== "Available")
        throw new ModelNotAvailableError(entry.id, entry.artifact.status, entry.artifact.error);
      return toHiveModel(entry);
    }
    if (parsed.kind !== "hf" || parsed.path !== undefined || parsed.quant !== undefined)
      throw new ValidationError(
        `'${ref.slice(0, 300)}' does not name a Hugging Face repo: a worker type that loads an hf-repo takes the repo itself, owner/repo[@revision] (not a file in it, nor a local path)`,
        "model",
      );
    const { repo, revision } = parsed;
    const id = catalogIdFor({ kind: "hf", repo, revision });
    const existing = await this.#o.catalog.get(id);
    if (existing?.artifact.status === "Available") return toHiveModel(existing);
    return this.#once(id, listener, async () => {
      const listed = await this.#client()
        .listFiles(repo, revision, signal)
        .catch((err: unknown) => {
          throw hubError(err, repo);
        });
      const files = pickRepoFiles(listed, repo);
      const plan: Plan = {
        format: "hf-repo",
        id,
        name: repo,
        repo,
        revision,
        files: files.map((f) => ({
          repoPath: f.path,
          size: f.size,
          sha256: f.sha256,
          localPath: findInHfCache(repo, revision, f.path, this.#o.env, f.size),
        })),
      };
      return this.#download(plan, listener, signal);
    });
  }

  /** Adds what config.json (and the safetensors headers) say to a repo entry. */
  async #withHfConfig(entry: CatalogEntry): Promise<HiveModel> {
    if (entry.artifact.hf_config !== undefined || entry.path === undefined) return toHiveModel(entry);
    try {
      let parameters: number | undefined;
      for (const f of entry.artifact.files ?? []) {
        if (!f.path.endsWith(".safetensors")) continue;
        parameters =
          (parameters ?? 0) + (await safetensorsParameters(isAbsolute(f.path) ? f.path : join(entry.dir, f.path)));
      }
      const hf_config = summarizeHfConfig(JSON.parse(await readFile(entry.path, "utf8")), parameters);
      const { id: _id, kind: _kind, ...fields } = entry.artifact;
      return toHiveModel(await this.#o.catalog.writeEntry(entry.id, { ...fields, hf_config }));
    } catch (err) {
      this.#o.log.warn({ model: entry.id, err: (err as Error).message }, "could not read the repo's config.json");
      return toHiveModel(entry);
    }
  }

  /** Runs `fetch` for a model unless it is already being fetched; two requests share one fetch. */
  #once(id: string, listener: ProvisionListener, fetch: () => Promise<HiveModel>): Promise<HiveModel> {
    let running = this.#inFlight.get(id);
    if (!running) {
      running = fetch().finally(() => this.#inFlight.delete(id));
      this.#inFlight.set(id, running);
    } else {
      listener.narrate?.(`${id} is already downloading; waiting for it`);
    }
    return running;
  }

  #fallBack(id: string, misses: readonly PeerMiss[], listener: ProvisionListener): void {
    this.#o.log.warn({ model: id, peers: misses.length }, "no peer hive delivered the model; using its source");
    listener.narrate?.(
      `no hive on the LAN delivered ${id} (${describeMisses(misses)}); downloading it from Hugging Face instead`,
    );
  }

  /**
   * Tries the peers in order until one delivers the model. A cancelled fetch throws (its part stays
   * in <cache>/tmp, and the next request resumes it, from the same peer or another); every other
   * failure is a miss and the next peer is tried.
   */
  async #fromPeers(
    id: string,
    peers: readonly ModelPeer[],
    listener: ProvisionListener,
    signal?: AbortSignal,
  ): Promise<{ model: HiveModel } | { misses: PeerMiss[] }> {
    const misses: PeerMiss[] = [];
    for (const peer of peers) {
      signal?.throwIfAborted();
      try {
        return { model: await this.#fromPeer(id, peer, listener, signal) };
      } catch (err) {
        if (signal?.aborted) throw err;
        const e = toRbeeError(err);
        const code = e.statusCode === 404 ? "model_not_found" : e.code;
        misses.push({ peer, code, message: e.message });
        this.#o.log.warn(
          { model: id, peer: peer.hive_id, code, err: e.message },
          "a peer hive did not deliver the model",
        );
        if (code !== "model_not_found")
          listener.narrate?.(`fetching ${id} from hive ${peer.hive_id} failed: ${e.message}`);
      }
    }
    return { misses };
  }

  /**
   * Fetches a model from one peer hive into the catalog: its file list (names, sizes, sha256) from
   * `GET /v1/models/{id}`, then every file from `GET /v1/models/{id}/files/{name}` with the
   * downloader (ranged, resumable from <cache>/tmp, sha256-checked). A file that fails its check is
   * deleted and the entry removed; a cancelled fetch leaves the entry Failed and the part for a resume.
   */
  async #fromPeer(id: string, peer: ModelPeer, listener: ProvisionListener, signal?: AbortSignal): Promise<HiveModel> {
    const what = `hive ${peer.hive_id}`;
    const modelUrl = `${peer.url.replace(/\/+$/, "")}/v1/models/${encodeURIComponent(id)}`;
    const token = this.#o.token;
    const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
    const shared = await requestJson(modelUrl, SharedModel, {
      token,
      signal,
      what,
      timeoutMs: PEER_DESCRIBE_TIMEOUT_MS,
    });
    const bad = shared.files.find((f) => !isPlainFileName(f.name));
    if (shared.id !== id || bad !== undefined)
      throw new RbeeError(
        `${what} answered for model '${id}' with ${bad ? `a file named '${bad.name}', which is not a plain file name` : `the model '${shared.id}'`}; is it an rbee hive of the same version?`,
        { statusCode: 502, code: "bad_gateway" },
      );
    const total = shared.files.reduce((n, f) => n + f.size_bytes, 0);
    const dir = join(this.#o.catalog.modelsDir, id);
    const base = { name: shared.name, version: shared.version ?? "", size_bytes: total, source_url: modelUrl };
    await this.#o.catalog.writeEntry(id, { ...base, status: "Downloading", downloaded_bytes: 0 });
    const count = shared.files.length;
    listener.narrate?.(
      `fetching ${id} from hive ${peer.hive_id} on the LAN (${count} file${count > 1 ? "s" : ""}, ${(total / MiB).toFixed(1)} MiB)`,
    );
    const t0 = performance.now();
    try {
      const requests = shared.files.map((f) => ({
        url: `${modelUrl}/files/${encodeURIComponent(f.name)}`,
        headers,
        destPath: join(dir, f.name),
        // the same part as a download from the Hub: either source resumes what the other began
        partPath: join(this.#o.tmpDir, `${id}--${f.name}.part`),
        size: f.size_bytes,
        sha256: f.sha256,
        retry: PEER_RETRY,
        stallTimeoutMs: PEER_STALL_MS,
        // one stream fills a LAN link, and keeps the sha256 running as the bytes land; parts would
        // leave most of the hashing for after the last byte (the hash follows the contiguous prefix)
        parts: 1,
      }));
      const results = await downloadFiles(requests, { signal, onProgress: (p) => listener.progress?.(p) });
      const fetched = results.reduce((n, r) => n + r.fetchedBytes, 0);
      const resumed = results.reduce((n, r) => n + r.resumedFromBytes, 0);
      const seconds = (performance.now() - t0) / 1000;
      listener.narrate?.(
        `fetched ${id} from hive ${peer.hive_id}: ${(fetched / MiB).toFixed(1)} MiB in ${seconds.toFixed(1)} s` +
          `${resumed > 0 ? ` (resumed: ${(resumed / MiB).toFixed(1)} MiB were already here)` : ""}, sha256 checked`,
      );
      this.#o.log.info(
        { model: id, peer: peer.hive_id, bytes: total, fetched, resumed, seconds },
        "model fetched from a peer hive",
      );
      const files = results.map((r, i) => ({
        path: r.path.slice(dir.length + 1),
        size_bytes: r.size,
        sha256: r.sha256 ?? shared.files[i]?.sha256,
      }));
      const entry = await this.#o.catalog.writeEntry(id, {
        ...base,
        status: "Available",
        files,
        ...(shared.gguf ? { gguf: shared.gguf } : {}),
      });
      return this.#withGguf(entry);
    } catch (err) {
      if (signal?.aborted) {
        const error = `the fetch from hive ${peer.hive_id} was cancelled; the part is kept, ask for the model again to resume`;
        await this.#o.catalog.writeEntry(id, { ...base, status: "Failed", error }).catch(() => undefined);
      } else {
        // nothing half-fetched or unverified stays in the catalog
        await this.#o.catalog.remove(id).catch(() => undefined);
      }
      throw err;
    }
  }

  /**
   * A file named by a request must be given by its absolute path, in a place this hive's owner
   * allows (ModelPathPolicy); a relative path would be resolved against the hive's own directory.
   */
  async #checkPath(ref: string, path: string, anyPath: boolean): Promise<void> {
    if (!isAbsolute(ref.trim()))
      throw new ValidationError(
        `'${ref.slice(0, 300)}' is a relative path: a hive takes model files by their absolute path only (the CLI sends the absolute path of a file on its own machine)`,
        "model",
      );
    await this.#o.modelPaths?.check(path, ref.trim(), anyPath);
  }

  /** What a model is and what it needs, reading only its GGUF header (over the network if need be). */
  async inspect(ref: string, ctxSize?: number, parallel?: number, anyPath = false): Promise<ModelInspection> {
    const parsed = parseModelRef(ref);
    if (parsed.kind === "local") await this.#checkPath(ref, parsed.path, anyPath);
    if (parsed.kind === "local" || parsed.kind === "id") {
      const entry =
        parsed.kind === "local"
          ? await this.#o.catalog.registerLocalFile(parsed.path)
          : await this.#o.catalog.get(parsed.id);
      if (entry?.path === undefined) throw new ModelNotFoundError(ref, NOT_IN_CATALOG);
      if (entry.artifact.status !== "Available")
        throw new ModelNotAvailableError(entry.id, entry.artifact.status, entry.artifact.error);
      const { header } = await readGgufHeader(entry.path);
      const info = inspectGguf(header, entry.artifact.size_bytes);
      return {
        ref,
        model_id: entry.id,
        source: parsed.kind === "local" ? "local" : "catalog",
        files: (entry.artifact.files ?? []).map((f) => ({ path: f.path, size_bytes: f.size_bytes })),
        gguf: ggufSummary(info),
        ...toEstimates(info, ctxSize, parallel),
        bytes_fetched: 0,
        model: toHiveModel(entry),
      };
    }
    // a model already in the catalog is inspected on disk: nothing is fetched
    const named = parsed.path === undefined ? undefined : await this.#o.catalog.get(catalogIdFor(parsed, parsed.path));
    if (named?.artifact.status === "Available")
      return this.inspect(named.id, ctxSize, parallel).then((i) => ({ ...i, ref }));
    const plan = await this.#plan(parsed);
    const planned = await this.#o.catalog.get(plan.id);
    if (planned?.artifact.status === "Available")
      return this.inspect(planned.id, ctxSize, parallel).then((i) => ({ ...i, ref, picked: plan.picked }));
    const first = plan.files[0] as PlannedFile;
    const total = plan.files.reduce((n, f) => n + f.size, 0);
    let info: GgufInfo;
    let fetched = 0;
    let source: ModelInspection["source"] = "hf-cache";
    if (first.localPath) {
      info = inspectGguf((await readGgufHeader(first.localPath)).header, total);
    } else {
      const client = this.#client();
      const read = await readGgufHeader({
        url: client.fileUrl(plan.repo, plan.revision, first.repoPath),
        headers: client.authHeaders(),
      }).catch((err: unknown) => {
        throw hubError(err, plan.repo);
      });
      info = inspectGguf(read.header, total);
      fetched = read.bytesRead;
      source = "huggingface";
    }
    return {
      ref,
      model_id: plan.id,
      source,
      files: plan.files.map((f) => ({ path: f.repoPath, size_bytes: f.size })),
      picked: plan.picked,
      gguf: ggufSummary(info),
      ...toEstimates(info, ctxSize, parallel),
      bytes_fetched: fetched,
    };
  }

  /** Lists the repo (when no file is named), picks the GGUF, and looks for it in the HF cache. */
  async #plan(ref: Extract<ModelRef, { kind: "hf" }>): Promise<Plan> {
    const client = this.#client();
    let files: HfFile[];
    let picked: string | undefined;
    if (ref.path === undefined) {
      const pick = pickGguf(await client.listFiles(ref.repo, ref.revision), { quant: ref.quant, repo: ref.repo });
      files = pick.files;
      picked = pick.reason;
    } else {
      files = pickGguf(await client.listFiles(ref.repo, ref.revision), { path: ref.path, repo: ref.repo }).files;
    }
    const first = (files[0] as HfFile).path;
    return {
      // the id names the file picked, so a repo reference and the file's own reference are one model
      id: catalogIdFor(ref, first),
      name: `${ref.repo}:${first}`,
      repo: ref.repo,
      revision: ref.revision,
      picked,
      files: files.map((f) => ({
        repoPath: f.path,
        size: f.size,
        sha256: f.sha256,
        localPath: findInHfCache(ref.repo, ref.revision, f.path, this.#o.env, f.size),
      })),
    };
  }

  async #download(plan: Plan, listener: ProvisionListener, signal?: AbortSignal): Promise<HiveModel> {
    const id = plan.id;
    if (plan.picked) listener.narrate?.(plan.picked);
    const total = plan.files.reduce((n, f) => n + f.size, 0);
    const sourceUrl = `${hfEndpoint(this.#o.env)}/${plan.repo}/tree/${plan.revision}`;
    const base = {
      name: plan.name,
      version: plan.revision,
      size_bytes: total,
      source_url: sourceUrl,
      ...(plan.format === "hf-repo" ? { format: "hf-repo" as const } : {}),
    };
    const described = (entry: CatalogEntry) =>
      plan.format === "hf-repo" ? this.#withHfConfig(entry) : this.#withGguf(entry);
    // already in the Hugging Face cache: used in place, nothing fetched
    if (plan.files.every((f) => f.localPath !== undefined)) {
      listener.narrate?.(`found ${plan.name} in the Hugging Face cache; using it in place`);
      const files = plan.files.map((f) => ({
        path: f.localPath as string,
        size_bytes: f.size,
        ...(f.sha256 ? { sha256: f.sha256 } : {}),
      }));
      return described(await this.#o.catalog.writeEntry(id, { ...base, status: "Available", files }));
    }
    const dir = join(this.#o.catalog.modelsDir, id);
    await this.#o.catalog.writeEntry(id, { ...base, status: "Downloading", downloaded_bytes: 0 });
    const client = this.#client();
    listener.narrate?.(
      `downloading ${plan.name} (${plan.files.length} file${plan.files.length > 1 ? "s" : ""}, ${(total / 2 ** 20).toFixed(1)} MiB)`,
    );
    const t0 = performance.now();
    try {
      // the Hub's URL with the token: the downloader follows the redirect to the CDN and drops
      // the token there; the CDN's own ETag (not the Hub's sha256) guards a resume
      const requests = plan.files.map((f) => {
        const fileName = f.repoPath.split("/").at(-1) as string;
        return {
          url: client.fileUrl(plan.repo, plan.revision, f.repoPath),
          headers: client.authHeaders(),
          // a repo keeps its files' names (all at its root: pickRepoFiles), a GGUF its file name
          destPath: join(dir, plan.format === "hf-repo" ? f.repoPath : fileName),
          partPath: join(this.#o.tmpDir, `${id}--${fileName}.part`),
          size: f.size,
          sha256: f.sha256,
          signal,
        };
      });
      const results = await downloadFiles(requests, { signal, onProgress: (p) => listener.progress?.(p) }).catch(
        (err: unknown) => {
          throw hubError(err, plan.repo);
        },
      );
      const fetched = results.reduce((n, r) => n + r.fetchedBytes, 0);
      const seconds = (performance.now() - t0) / 1000;
      listener.narrate?.(
        `downloaded ${plan.name}: ${(fetched / 2 ** 20).toFixed(1)} MiB in ${seconds.toFixed(1)} s, sha256 checked`,
      );
      this.#o.log.info({ model: id, bytes: total, fetched, seconds }, "model downloaded");
      const files = results.map((r, i) => ({
        path: r.path.slice(dir.length + 1),
        size_bytes: r.size,
        sha256: r.sha256 ?? plan.files[i]?.sha256,
      }));
      return described(await this.#o.catalog.writeEntry(id, { ...base, status: "Available", files }));
    } catch (err) {
      const message = signal?.aborted
        ? "the download was cancelled; the part is kept, ask for the model again to resume"
        : (err as Error).message;
      await this.#o.catalog.writeEntry(id, { ...base, status: "Failed", error: message }).catch(() => undefined);
      throw err;
    }
  }

  /** Adds what the GGUF header says to an entry that does not have it yet. */
  async #withGguf(entry: CatalogEntry): Promise<HiveModel> {
    if (entry.artifact.gguf !== undefined || entry.path === undefined) return toHiveModel(entry);
    try {
      const { header } = await readGgufHeader(entry.path);
      const gguf = ggufSummary(inspectGguf(header, entry.artifact.size_bytes));
      const { id: _id, kind: _kind, ...fields } = entry.artifact;
      return toHiveModel(await this.#o.catalog.writeEntry(entry.id, { ...fields, gguf }));
    } catch (err) {
      this.#o.log.warn({ model: entry.id, err: (err as Error).message }, "could not read the GGUF header");
      return toHiveModel(entry);
    }
  }
}
