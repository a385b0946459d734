export {
  COMFYUI_HINT,
  ComfyUiEngine,
  type ComfyUiEngineOptions,
  DEFAULT_COMFYUI_START_TIMEOUT_MS,
  DEFAULT_COMFYUI_URL,
  IMAGE_DEFAULTS,
} from "./comfyui-engine.js";
export { ComfySocket } from "./comfyui-socket.js";
export { type ComfyUiWorkerOptions, runComfyUiWorker } from "./run-comfyui-worker.js";
export { comfyuiWorkerType } from "./worker-type.js";
export { DEFAULT_WORKFLOW_PATH, Workflow, WorkflowError } from "./workflow.js";
