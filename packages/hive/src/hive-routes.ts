import {
  InspectModelRequest,
  InstallWorkerPackageRequest,
  PROTOCOL_VERSION,
  ResolveModelRequest,
  SafeId,
  SpawnWorkerRequest,
  ValidationError,
  WorkerHeartbeat,
  WorkerTypeId,
} from "@rbee/contract";
import { bearerAuth, type HttpContext, Router } from "@rbee/server-kit";
import { WorkerNotFoundError } from "./errors.js";
import type { Hive } from "./hive.js";
import { ModelSharing } from "./model-sharing.js";
import { sendFile } from "./send-file.js";

const DEFAULT_LOG_TAIL = 200;
const MAX_LOG_TAIL = 10_000;

/**
 * The hive's HTTP API (documented in @rbee/contract hive-api.ts). Every route but GET /health wants
 * the cluster token.
 */
export function hiveRoutes(hive: Hive): Router {
  const auth = [
    bearerAuth({
      tokens: () => [hive.token],
      what: "cluster token",
      hint: "use the cluster token of this machine's rbee (RBEE_CLUSTER_TOKEN, or the cluster-token file in the rbee config directory)",
    }),
  ];
  const sharing = new ModelSharing(hive.catalog, hive.log);
  return (
    new Router()
      .get("/health", (ctx) => {
        const closing = hive.closing;
        ctx.send(closing ? 503 : 200, {
          status: closing ? "Stopping" : "Ready",
          hive_id: hive.id,
          version: hive.version,
        });
      })
      .get("/v1/info", async (ctx) => ctx.send(200, await hive.info()), auth)
      .get("/v1/workers", (ctx) => ctx.send(200, { workers: hive.workers(), spare_pid: hive.sparePid() ?? null }), auth)
      .get(
        "/v1/worker-types",
        async (ctx) => {
          // ?refresh=1 looks for engines again now (after `rbee engine build` or `rbee engine add`)
          const refresh = ctx.url.searchParams.get("refresh");
          const types = await hive.workerCatalog.current(refresh === "1" || refresh === "true");
          ctx.send(200, { hive_id: hive.id, worker_types: types });
        },
        auth,
      )
      .post(
        "/v1/workers",
        async (ctx) => {
          const request = await ctx.json(SpawnWorkerRequest, "spawn request");
          const report = await hive.spawnWorker(request, ctx.signal);
          ctx.logFields.worker_id = report.worker_id;
          ctx.send(201, report);
        },
        auth,
      )
      .delete(
        "/v1/workers/:id",
        async (ctx) => {
          ctx.send(200, await hive.stopWorker(workerIdParam(ctx)));
        },
        auth,
      )
      .get("/v1/workers/:id/logs", async (ctx) => sendLogs(ctx, hive), auth)
      .get("/v1/worker-packages", (ctx) => ctx.send(200, { hive_id: hive.id, packages: packageList(hive) }), auth)
      .post("/v1/worker-packages", (ctx) => installPackage(ctx, hive), auth)
      .post(
        "/v1/worker-packages/:id/rollback",
        async (ctx) => ctx.send(200, await hive.rollbackPackage(packageIdParam(ctx))),
        auth,
      )
      .delete(
        "/v1/worker-packages/:id",
        async (ctx) => ctx.send(200, await hive.uninstallPackage(packageIdParam(ctx))),
        auth,
      )
      .post("/v1/models", (ctx) => provisionModel(ctx, hive), auth)
      .post(
        "/v1/models/inspect",
        async (ctx) => {
          const r = await ctx.json(InspectModelRequest, "inspect request");
          ctx.send(200, await hive.inspectModel(r.ref, r.ctx_size, r.parallel, r.any_path === true));
        },
        auth,
      )
      .get("/v1/models", async (ctx) => ctx.send(200, { models: await hive.models() }), auth)
      // model sharing on the LAN: what another hive needs to fetch a model, and its bytes by Range
      .get("/v1/models/:id", async (ctx) => ctx.send(200, await sharing.describe(ctx.params.id ?? "")), auth)
      .get(
        "/v1/models/:id/files/:name",
        async (ctx) => sendFile(ctx, await sharing.open(ctx.params.id ?? "", ctx.params.name ?? "")),
        auth,
      )
      .delete("/v1/models/:id", async (ctx) => ctx.send(200, await hive.removeModel(ctx.params.id ?? "")), auth)
      .post(
        "/v1/worker-heartbeat",
        async (ctx) => {
          const hb = await ctx.json(WorkerHeartbeat, "worker heartbeat");
          if (hb.protocol_version !== PROTOCOL_VERSION) {
            const upgrade = hb.protocol_version < PROTOCOL_VERSION ? "the worker" : "this hive";
            throw new ValidationError(
              `worker '${hb.worker_id}' speaks protocol ${hb.protocol_version} but this hive speaks ${PROTOCOL_VERSION}; upgrade ${upgrade}`,
              "protocol_version",
            );
          }
          ctx.send(200, { ack: true, commands: hive.receiveWorkerHeartbeat(hb) });
        },
        auth,
      )
      .get(
        "/metrics",
        async (ctx) => {
          const { contentType, body } = await hive.renderMetrics();
          ctx.sendText(200, body, contentType);
        },
        auth,
      )
  );
}

/**
 * POST /v1/models: JSON once the model is available, or, for `Accept: text/event-stream`, its
 * narration and download progress as they happen, then `done` {model} or `error`. A client that
 * goes away stops the download; the part stays for a later resume.
 */
async function provisionModel(ctx: HttpContext, hive: Hive): Promise<void> {
  const request = await ctx.json(ResolveModelRequest, "model request");
  if (!(ctx.header("accept") ?? "").includes("text/event-stream")) {
    ctx.send(
      200,
      await hive.resolveModel(request.ref, {}, ctx.signal, request.peers, request.any_path === true, request.format),
    );
    return;
  }
  const sse = ctx.sse();
  void sse.comment("provisioning");
  const model = await hive.resolveModel(
    request.ref,
    {
      narrate: (message) => void sse.send("narration", { message }),
      progress: throttledProgress((p) => void sse.send("progress", p)),
    },
    ctx.signal,
    request.peers,
    request.any_path === true,
    request.format,
  );
  await sse.send("done", { model });
}

/** The installed packages: id, version, trust, source, auto-update. */
function packageList(hive: Hive) {
  return Object.values(hive.packages.types()).map((t) => ({ id: t.id, description: t.description, ...t.package }));
}

function packageIdParam(ctx: HttpContext): string {
  const id = ctx.params.id ?? "";
  if (!WorkerTypeId.safeParse(id).success) {
    throw new ValidationError(`'${id}' is not a worker package id (lower-case letters, digits and dashes)`, "id");
  }
  return id;
}

/**
 * POST /v1/worker-packages: JSON once installed, or, for `Accept: text/event-stream`, narration and
 * download progress as they happen, then `done` or `error` (as POST /v1/models). A client that goes
 * away stops the download; its part stays, and the next install resumes it.
 */
async function installPackage(ctx: HttpContext, hive: Hive): Promise<void> {
  const request = await ctx.json(InstallWorkerPackageRequest, "install request");
  if (!(ctx.header("accept") ?? "").includes("text/event-stream")) {
    ctx.send(200, await hive.installPackage(request, {}, ctx.signal));
    return;
  }
  const sse = ctx.sse();
  void sse.comment("installing");
  const outcome = await hive.installPackage(
    request,
    {
      narrate: (message) => void sse.send("narration", { message }),
      progress: throttledProgress((p) => void sse.send("progress", p)),
    },
    ctx.signal,
  );
  await sse.send("done", outcome);
}

/** Download progress as SSE data, at most five a second (and the last one). */
function throttledProgress(send: (p: object) => void) {
  let last = 0;
  return (p: { done: number; total: number | null; rate: number; etaSeconds: number | null }) => {
    const now = performance.now();
    if (now - last < 200 && p.done !== p.total) return;
    last = now;
    send({ done: p.done, total: p.total, unit: "bytes", rate: Math.round(p.rate), eta_seconds: p.etaSeconds });
  };
}

function workerIdParam(ctx: HttpContext): string {
  const id = ctx.params.id ?? "";
  if (!SafeId.safeParse(id).success) throw new WorkerNotFoundError(id);
  return id;
}

async function sendLogs(ctx: HttpContext, hive: Hive): Promise<void> {
  const id = workerIdParam(ctx);
  const tailText = ctx.url.searchParams.get("tail");
  let tail = DEFAULT_LOG_TAIL;
  if (tailText !== null) {
    tail = Number(tailText);
    if (!Number.isInteger(tail) || tail < 1 || tail > MAX_LOG_TAIL) {
      throw new ValidationError(`tail must be a whole number from 1 to ${MAX_LOG_TAIL}, got '${tailText}'`, "tail");
    }
  }
  const lines = await hive.workerLogs(id, tail);
  ctx.sendText(200, lines.length === 0 ? "" : `${lines.join("\n")}\n`);
}
