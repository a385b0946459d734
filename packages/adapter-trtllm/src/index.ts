export { trtllmAdapter } from "./trtllm-adapter.js";
export { trtllmStatsReader } from "./trtllm-stats.js";
export { TRTLLM_ENGINE, TRTLLM_INSTALL_HINT, trtllmWorkerType } from "./worker-type.js";
