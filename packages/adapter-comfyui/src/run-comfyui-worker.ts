import { randomBytes } from "node:crypto";
import type { Device } from "@rbee/contract";
import { createLogger } from "@rbee/server-kit";
import { type EngineGuard, findDevice, runtimeOptionsFromFlags, runWorker, type ServeFlags } from "@rbee/worker-kit";
import { ComfyUiEngine, DEFAULT_COMFYUI_URL } from "./comfyui-engine.js";

/** Its own options, and the serve flags every worker type takes. */
export interface ComfyUiWorkerOptions extends ServeFlags {
  /** The checkpoint (a file in ComfyUI's models/checkpoints; any case, extension optional). */
  model: string;
  modelId?: string;
  workerId?: string;
  device: string;
  parallel: number;
  /** Attach to this ComfyUI (default RBEE_COMFYUI_URL, else http://127.0.0.1:8188). */
  comfyuiUrl?: string;
  /** Start ComfyUI from this checkout instead of attaching (default RBEE_COMFYUI_DIR). */
  comfyuiDir?: string;
  /** The python that runs main.py (default RBEE_COMFYUI_PYTHON, else the checkout's venv, else python3). */
  python?: string;
  /** More arguments for main.py (`--cpu`, `--lowvram`, ...). */
  engineArgs?: string[];
  /** A workflow file in API format with {{name}} inputs (default RBEE_COMFYUI_WORKFLOW, else the shipped one). */
  workflow?: string;
  engineStartTimeoutMs?: number;
  guard?: EngineGuard;
  env?: NodeJS.ProcessEnv;
}

/** `rbee worker serve comfyui`: resolves the options, then runs the adapter until it is stopped. */
export async function runComfyUiWorker(o: ComfyUiWorkerOptions): Promise<never> {
  const env = o.env ?? process.env;
  const workerId = o.workerId ?? `comfyui-${randomBytes(4).toString("hex")}`;
  const modelId = o.modelId ?? o.model;
  const log = createLogger({ service: "worker", bindings: { worker_id: workerId } });
  let device: Device;
  try {
    device = await findDevice(o.device);
  } catch (err) {
    process.stderr.write(`rbee worker: ${(err as Error).message}\n`);
    process.exit(1);
  }
  // an explicit URL attaches; otherwise a checkout (flag or environment) is started
  const dir = o.comfyuiUrl === undefined ? (o.comfyuiDir ?? env.RBEE_COMFYUI_DIR) : undefined;
  const engine = new ComfyUiEngine({
    model: o.model,
    modelId,
    device,
    parallel: o.parallel,
    workflowPath: o.workflow ?? env.RBEE_COMFYUI_WORKFLOW,
    ...(dir !== undefined && dir !== ""
      ? {
          start: {
            python: o.python ?? env.RBEE_COMFYUI_PYTHON ?? "python3",
            dir,
            extraArgs: o.engineArgs,
            startTimeoutMs: o.engineStartTimeoutMs,
            guard: o.guard,
          },
        }
      : { url: o.comfyuiUrl ?? env.RBEE_COMFYUI_URL ?? DEFAULT_COMFYUI_URL }),
  });
  return runWorker(engine, runtimeOptionsFromFlags(o, { workerId, modelId, device, log }));
}
