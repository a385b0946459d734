import { randomInt } from "node:crypto";
import {
  type Device,
  type GeneratedImage,
  type ImageRequest,
  type InferRequest,
  InsufficientMemoryError,
  ModelNotFoundError,
  RbeeError,
  safeParse,
  type WorkerCapability,
  type WorkerHeartbeat,
  type WorkflowInputValue,
} from "@rbee/contract";
import {
  type EngineClient,
  EngineEndpoint,
  type EngineGuard,
  EngineHttpError,
  type ImageContext,
  type ImageResult,
  type InferContext,
  type InferResult,
  type LoadContext,
  type LoadedModel,
  probeEngine,
  type WorkerEngine,
} from "@rbee/worker-kit";
import { HistoryEntry, type ImageRef, PromptQueued, PromptRefused, SystemStats } from "./comfyui-replies.js";
import { ComfySocket } from "./comfyui-socket.js";
import { Workflow, WorkflowError } from "./workflow.js";

/** Where ComfyUI listens unless told otherwise (its own default). */
export const DEFAULT_COMFYUI_URL = "http://127.0.0.1:8188";
/** How long `python main.py` may take to answer (ComfyUI imports torch and its custom nodes first). */
export const DEFAULT_COMFYUI_START_TIMEOUT_MS = 180_000;

export const COMFYUI_HINT =
  "install ComfyUI (https://github.com/comfyanonymous/ComfyUI) and start it (`python main.py`), point the adapter at it with --comfyui-url, or pass --comfyui-dir <ComfyUI checkout> to let the adapter start it";

/** What a request gets when it does not say (the default workflow's values). */
export const IMAGE_DEFAULTS = Object.freeze({ width: 512, height: 512, steps: 20 });

export interface ComfyUiEngineOptions {
  /** The checkpoint the worker serves (a file in ComfyUI's models/checkpoints, any case, extension optional). */
  model: string;
  /** The name the worker serves it under (default the model name). */
  modelId: string;
  device: Device;
  /** Attach mode: the running ComfyUI's URL. */
  url?: string;
  /** Start mode: run `<python> main.py --listen 127.0.0.1 --port <free>` in `dir`, tied to the adapter's life. */
  start?: {
    python: string;
    dir: string;
    extraArgs?: readonly string[];
    startTimeoutMs?: number;
    guard?: EngineGuard;
    env?: Record<string, string>;
  };
  /** A workflow file in API format with {{name}} inputs; default the shipped text-to-image workflow. */
  workflowPath?: string;
  /** Requests sent to ComfyUI at once (it runs one prompt at a time; more wait in its queue). */
  parallel: number;
  /** How often /system_stats is read for heartbeats; default 2 s. */
  statsIntervalMs?: number;
}

interface Running {
  promptId: string;
  node: string | null;
  progress: number;
}

/**
 * ComfyUI behind the worker contract, for image generation. It attaches to a running ComfyUI, or
 * starts `python main.py` as its child (EngineProcess: never outliving the adapter). Load reads
 * `/system_stats` and finds the checkpoint in `/models/checkpoints`; `/v1/images` fills the workflow's
 * named inputs, queues it with `POST /prompt`, follows it over the websocket (`progress`,
 * `executing`, `executed`, `execution_success` / `execution_error`), then reads the images through
 * `/history/{prompt_id}` and `/view`. The heartbeat carries the workflow's progress and the device
 * memory from `/system_stats`.
 */
export class ComfyUiEngine implements WorkerEngine {
  readonly workerType = "comfyui";
  readonly implementation = "comfyui";
  readonly capabilities: readonly WorkerCapability[] = ["image-generation", "workflow"];

  #o: ComfyUiEngineOptions;
  /** The ComfyUI this adapter talks to (started by it, or attached to). */
  readonly engine = new EngineEndpoint("comfyui");
  #socket: ComfySocket | undefined;
  #workflow: Workflow | undefined;
  #checkpoint = "";
  #timer: NodeJS.Timeout | undefined;
  #vram: { used: number; total: number } | undefined;
  #running: Running | undefined;

  constructor(options: ComfyUiEngineOptions) {
    this.#o = options;
  }

  get version(): string {
    return this.engine.version;
  }

  /** The checkpoint file ComfyUI loads for this worker's model. */
  get checkpoint(): string {
    return this.#checkpoint;
  }

  async load(ctx: LoadContext): Promise<LoadedModel> {
    const { log } = ctx;
    this.#workflow = await Workflow.load(this.#o.workflowPath);
    const start = this.#o.start;
    const client = await this.engine.open(
      {
        start: start && {
          name: "comfyui",
          binary: start.python,
          args: (port) => ["main.py", "--listen", "127.0.0.1", "--port", String(port), ...(start.extraArgs ?? [])],
          env: () => start.env ?? {},
          cwd: start.dir,
          binaryHint: COMFYUI_HINT,
          readyPath: "/system_stats",
          startTimeoutMs: start.startTimeoutMs ?? DEFAULT_COMFYUI_START_TIMEOUT_MS,
          guard: start.guard,
        },
        url: this.#o.url ?? DEFAULT_COMFYUI_URL,
      },
      ctx,
    );
    const stats = await probeEngine(client, "/system_stats", SystemStats, {
      product: "ComfyUI",
      hint: COMFYUI_HINT,
      signal: ctx.signal,
    });
    this.engine.version = stats.system.comfyui_version ?? "unknown";
    this.#readStats(stats);
    this.#checkpoint = await this.#findCheckpoint(client, ctx.signal);
    this.#socket = new ComfySocket(this.engine.baseUrl, log);
    this.#socket.onMessage = (m) => this.#track(m.type, m.data);
    await this.#socket.open(ctx.signal);
    this.#timer = setInterval(() => void this.#poll(), this.#o.statsIntervalMs ?? 2000);
    this.#timer.unref();
    log.info(
      {
        engine: "comfyui",
        ...this.engine.facts(),
        checkpoint: this.#checkpoint,
        workflow: this.#workflow.name,
        workflow_inputs: this.#workflow.inputs.join(","),
      },
      "comfyui serving",
    );
    return { modelId: this.#o.modelId, slots: this.#o.parallel };
  }

  /** The checkpoint file for the model name: exact, then any case, then without its extension. */
  async #findCheckpoint(client: EngineClient, signal: AbortSignal): Promise<string> {
    const wanted = this.#o.model;
    let list: string[];
    try {
      const raw = await client.json("/models/checkpoints", { timeoutMs: 10_000, signal });
      list = Array.isArray(raw) ? raw.filter((x): x is string => typeof x === "string") : [];
    } catch (err) {
      // an older ComfyUI without /models/{folder}: use the name as it is; /prompt's validation says the rest
      if (err instanceof EngineHttpError && err.reply.status === 404) return wanted;
      throw err;
    }
    const lower = wanted.toLowerCase();
    const stem = (f: string) => f.toLowerCase().replace(/\.(safetensors|ckpt|pt|pth|bin|gguf|sft)$/, "");
    const found =
      list.find((f) => f === wanted) ??
      list.find((f) => f.toLowerCase() === lower) ??
      list.find((f) => stem(f) === lower);
    if (found !== undefined) return found;
    throw new ModelNotFoundError(
      wanted,
      `ComfyUI at ${this.engine.baseUrl} has no checkpoint '${wanted}' in models/checkpoints; it has: ${list.length > 0 ? list.join(", ") : "none"}`,
    );
  }

  async infer(_request: InferRequest, _ctx: InferContext): Promise<InferResult> {
    throw new RbeeError(
      `model '${this.#o.modelId}' generates images (a ComfyUI worker), not text; send it to /v1/images/generations`,
      { statusCode: 400, code: "model_generates_images", param: "model" },
    );
  }

  async generateImages(request: ImageRequest, ctx: ImageContext): Promise<ImageResult> {
    const workflow = this.#workflow as Workflow;
    const n = request.n ?? 1;
    const seed = request.seed ?? randomInt(0, 2 ** 32 - 1);
    for (const [field, input] of [
      ["width", "width"],
      ["height", "height"],
      ["steps", "steps"],
      ["seed", "seed"],
      ["negative_prompt", "negative_prompt"],
    ] as const) {
      if (request[field] !== undefined && !workflow.has(input)) {
        throw new WorkflowError(
          `workflow ${workflow.name} has no input '${input}', so ${field} cannot be set; its inputs are: ${workflow.inputs.join(", ")}`,
          field,
        );
      }
    }
    for (const name of Object.keys(request.inputs ?? {})) {
      if (!workflow.has(name)) {
        throw new WorkflowError(
          `workflow ${workflow.name} has no input '${name}'; its inputs are: ${workflow.inputs.join(", ")}`,
          `inputs.${name}`,
        );
      }
    }
    const width = request.width ?? IMAGE_DEFAULTS.width;
    const height = request.height ?? IMAGE_DEFAULTS.height;
    const images: GeneratedImage[] = [];
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const values: Record<string, WorkflowInputValue | undefined> = {
        negative_prompt: "",
        ...request.inputs,
        prompt: request.prompt,
        width,
        height,
        steps: request.steps ?? IMAGE_DEFAULTS.steps,
        seed: (seed + i) >>> 0,
        checkpoint: this.#checkpoint,
        ...(request.negative_prompt !== undefined ? { negative_prompt: request.negative_prompt } : {}),
      };
      const graph = workflow.fill(values);
      const { promptId, refs } = await this.#run(graph, ctx, (fraction) => (i + fraction) / n, i);
      ids.push(promptId);
      for (const ref of refs) {
        const file = await this.#view(ref, ctx.signal);
        images.push({
          data: file.data.toString("base64"),
          mime_type: file.mime,
          seed: (seed + i) >>> 0,
          width,
          height,
        });
      }
    }
    if (images.length === 0) {
      throw new RbeeError(
        `workflow ${workflow.name} ran but saved no image (it needs a SaveImage or PreviewImage node)`,
        {
          statusCode: 502,
          code: "engine_error",
        },
      );
    }
    return { images, engine_job_id: ids.join(",") };
  }

  /** Queues one graph and follows it to its end; the images it saved. */
  async #run(
    graph: unknown,
    ctx: ImageContext,
    overall: (fraction: number) => number,
    image: number,
  ): Promise<{ promptId: string; refs: ImageRef[] }> {
    const client = this.engine.ready();
    const socket = this.#socket as ComfySocket;
    await socket.open(ctx.signal);
    let promptId: string;
    try {
      const raw = await client.json("/prompt", {
        body: { prompt: graph, client_id: socket.clientId },
        signal: ctx.signal,
        timeoutMs: 30_000,
      });
      const queued = safeParse(PromptQueued, raw, "comfyui /prompt reply");
      if (!queued.ok) throw new RbeeError(queued.error.message, { statusCode: 502, code: "bad_gateway" });
      promptId = queued.value.prompt_id;
    } catch (err) {
      throw this.#refusal(err);
    }
    ctx.progress({ fraction: overall(0), image, stage: "queued" });
    await new Promise<void>((resolve, reject) => {
      let started = false;
      const onAbort = () => {
        // ComfyUI goes on unless told: interrupt it when it runs ours, take it off the queue otherwise
        const path = started ? "/interrupt" : "/queue";
        void client.json(path, { body: started ? {} : { delete: [promptId] }, timeoutMs: 5000 }).catch(() => undefined);
        done(new RbeeError("image generation cancelled: the client went away", { statusCode: 499, code: "cancelled" }));
      };
      const done = (err?: Error) => {
        stop();
        ctx.signal.removeEventListener("abort", onAbort);
        if (err) reject(err);
        else resolve();
      };
      const stop = socket.listen(promptId, {
        lost: (error) => done(error),
        message: (m) => {
          const d = m.data;
          switch (m.type) {
            case "execution_start":
              started = true;
              ctx.progress({ fraction: overall(0), image, stage: "started" });
              break;
            case "executing":
              if (d.node === null || d.node === undefined) return done();
              started = true;
              ctx.progress({ fraction: overall(this.#running?.progress ?? 0), image, stage: this.#label(d.node) });
              break;
            case "progress":
              if (d.value !== undefined && d.max) {
                ctx.progress({
                  fraction: overall(Math.min(1, d.value / d.max)),
                  image,
                  step: Math.round(d.value),
                  steps: Math.round(d.max),
                  stage: this.#label(d.node),
                });
              }
              break;
            case "execution_success":
              return done();
            case "execution_interrupted":
              return done(
                new RbeeError(`ComfyUI interrupted prompt ${promptId} (someone pressed cancel in ComfyUI?)`, {
                  statusCode: 502,
                  code: "engine_interrupted",
                }),
              );
            case "execution_error":
              return done(this.#executionError(promptId, d));
          }
          return undefined;
        },
      });
      if (ctx.signal.aborted) onAbort();
      else ctx.signal.addEventListener("abort", onAbort, { once: true });
    });
    const history = await client.json(`/history/${encodeURIComponent(promptId)}`, {
      signal: ctx.signal,
      timeoutMs: 30_000,
    });
    const entry = safeParse(
      HistoryEntry,
      (history as Record<string, unknown> | null)?.[promptId],
      `comfyui /history/${promptId}`,
    );
    if (!entry.ok) {
      throw new RbeeError(`ComfyUI has no history of prompt ${promptId} after it ran: ${entry.error.message}`, {
        statusCode: 502,
        code: "bad_gateway",
      });
    }
    const refs = Object.values(entry.value.outputs).flatMap((o) => o.images ?? []);
    return {
      promptId,
      refs: refs.filter((r) => r.type === "output").length > 0 ? refs.filter((r) => r.type === "output") : refs,
    };
  }

  async #view(ref: ImageRef, signal: AbortSignal): Promise<{ data: Buffer; mime: string }> {
    const q = new URLSearchParams({ filename: ref.filename, subfolder: ref.subfolder, type: ref.type });
    const file = await this.engine.ready().bytes(`/view?${q}`, { signal, timeoutMs: 60_000 });
    const mime = file.contentType?.split(";")[0]?.trim() || "image/png";
    return { data: file.data, mime };
  }

  /** ComfyUI's refusal of a workflow, in its own words: the checkpoint it lacks is the model not found. */
  #refusal(err: unknown): Error {
    if (!(err instanceof EngineHttpError) || err.reply.status !== 400) return err as Error;
    const body = safeParse(PromptRefused, err.reply.body, "comfyui /prompt refusal");
    if (!body.ok)
      return new RbeeError(`ComfyUI refused the workflow: ${err.reply.message}`, {
        statusCode: 400,
        code: "workflow_invalid",
      });
    const top = body.value.error;
    const headline = typeof top === "string" ? top : `${top.message}${top.details ? `: ${top.details}` : ""}`;
    const nodeErrors = Array.isArray(body.value.node_errors) ? {} : (body.value.node_errors ?? {});
    const reasons: string[] = [];
    for (const [id, node] of Object.entries(nodeErrors)) {
      for (const e of node.errors) {
        reasons.push(`node ${id} (${node.class_type ?? "?"}): ${e.message}${e.details ? `: ${e.details}` : ""}`);
        if (e.type === "value_not_in_list" && e.extra_info?.input_name === "ckpt_name") {
          return new ModelNotFoundError(
            String(e.extra_info.received_value ?? this.#checkpoint),
            `ComfyUI has no such checkpoint: ${e.details ?? e.message}`,
          );
        }
      }
    }
    const workflow = this.#workflow?.name ?? "the workflow";
    return new RbeeError(`ComfyUI refused ${workflow}: ${reasons.length > 0 ? reasons.join("; ") : headline}`, {
      statusCode: 400,
      code: "workflow_invalid",
      details: { node_errors: nodeErrors },
    });
  }

  #executionError(promptId: string, d: Record<string, unknown>): Error {
    const message = String(d.exception_message ?? "unknown error").trim();
    const type = String(d.exception_type ?? "");
    const where = `node ${String(d.node_id ?? "?")} (${String(d.node_type ?? "?")})`;
    if (/OutOfMemory|out of memory/i.test(`${type} ${message}`)) {
      return new InsufficientMemoryError(
        `ComfyUI ran out of memory in ${where} of prompt ${promptId}: ${message.split("\n")[0]}; ask for a smaller size or fewer images`,
        { engine_message: message, exception_type: type },
      );
    }
    return new RbeeError(`ComfyUI failed in ${where} of prompt ${promptId}: ${type ? `${type}: ` : ""}${message}`, {
      statusCode: 502,
      code: "engine_error",
    });
  }

  #label(node: string | null | undefined): string | undefined {
    return this.#workflow?.nodeLabel(node ?? undefined) ?? undefined;
  }

  /** Follows every message for the heartbeat's workflow progress. */
  #track(type: string, d: { prompt_id?: string | null; node?: string | null; value?: number; max?: number }): void {
    const id = d.prompt_id;
    if (typeof id !== "string") return;
    if (type === "execution_start") this.#running = { promptId: id, node: null, progress: 0 };
    else if (type === "executing") {
      if (d.node === null) this.#running = undefined;
      else this.#running = { promptId: id, node: d.node ?? null, progress: this.#running?.progress ?? 0 };
    } else if (type === "progress" && d.value !== undefined && d.max) {
      this.#running = {
        promptId: id,
        node: d.node ?? this.#running?.node ?? null,
        progress: Math.min(1, d.value / d.max),
      };
    } else if (["execution_success", "execution_error", "execution_interrupted"].includes(type))
      this.#running = undefined;
  }

  #readStats(s: SystemStats): void {
    const device = s.devices[0];
    if (device?.vram_total !== undefined) {
      this.#vram = {
        total: device.vram_total,
        used: Math.max(0, device.vram_total - (device.vram_free ?? device.vram_total)),
      };
    }
  }

  async #poll(): Promise<void> {
    const client = this.engine.client;
    if (client === undefined) return;
    try {
      const s = safeParse(
        SystemStats,
        await client.json("/system_stats", { timeoutMs: 5000 }),
        "comfyui /system_stats",
      );
      if (s.ok) this.#readStats(s.value);
    } catch {
      // ComfyUI busy or restarting: the heartbeat keeps the last values
    }
  }

  memory(): { used: number; total: number } {
    return this.#vram ?? { used: 0, total: this.#o.device.memory_total };
  }

  heartbeatExtras(_standard: Readonly<WorkerHeartbeat>): Partial<WorkerHeartbeat> {
    const r = this.#running;
    return {
      current_workflow: this.#workflow?.name ?? null,
      workflow_progress: r
        ? { prompt_id: r.promptId, current_node: r.node, progress: Math.round(r.progress * 1000) / 1000 }
        : null,
      loaded_models: this.#checkpoint ? [this.#checkpoint] : [],
    };
  }

  async dispose(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#socket?.close();
    await this.engine.close();
  }
}
