import { adapterProcessEstimate, rbeeServeCommand, type WorkerTypeDescriptor } from "@rbee/contract";

/**
 * The ComfyUI worker type: the rbee adapter in front of a ComfyUI, for image generation. It attaches
 * to a running ComfyUI (`RBEE_COMFYUI_URL` in the hive's environment, default http://127.0.0.1:8188),
 * or, when the hive's environment has `RBEE_COMFYUI_DIR` (a ComfyUI checkout), starts
 * `python main.py` there itself. The model is a checkpoint in ComfyUI's models/checkpoints, which
 * ComfyUI loads: rbee provisions nothing (artifact `none`). `RBEE_COMFYUI_WORKFLOW` names a workflow
 * file with {{name}} inputs instead of the shipped text-to-image one. This module loads no engine.
 */
export const comfyuiWorkerType: WorkerTypeDescriptor = Object.freeze<WorkerTypeDescriptor>({
  id: "comfyui",
  description:
    "ComfyUI behind an adapter: image generation from a workflow (attaches to a running ComfyUI, or starts it)",
  capabilities: Object.freeze(["image-generation", "workflow"] as const),
  deviceKinds: Object.freeze(["cpu", "cuda", "metal", "vulkan", "rocm"] as const),
  artifact: "none",
  installHint:
    "install ComfyUI (https://github.com/comfyanonymous/ComfyUI) and start it, or set RBEE_COMFYUI_DIR to its checkout in the hive's environment",
  // ComfyUI runs one prompt at a time; a second waits in ComfyUI's own queue
  defaults: Object.freeze({ maxContextSize: 4096, parallel: 1 }),
  // the checkpoint lives in ComfyUI's memory, which ComfyUI manages (and reports in /system_stats)
  estimateMemory: (_model, o) => adapterProcessEstimate(o, 1),
  // ComfyUI imports torch and its custom nodes before it answers: give it time
  readyTimeoutMs: 240_000,
  launch: (spec, ctx) => rbeeServeCommand("comfyui", { ...spec, modelPath: spec.modelId }, ctx),
});
