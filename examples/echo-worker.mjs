// A complete rbee worker: it "generates" by echoing the prompt back word by word.
import { runWorker, workerConfig } from "@rbee/worker-kit";

// its configuration, as a package's worker (rbee worker spawn --type echo-package --config case=upper):
// the hive checked it against config_schema in rbee-worker.json and filled in the defaults; {} by hand
const config = workerConfig();
const shape = { upper: (s) => s.toUpperCase(), lower: (s) => s.toLowerCase() }[config.case] ?? ((s) => s);

const echo = {
  // a hive that installed it as a package names the type it was installed as
  workerType: process.env.RBEE_WORKER_TYPE || "echo",
  implementation: "echo-example",
  version: "1.0.0",
  capabilities: ["text-generation", "chat"],

  async load() {
    // a hive that spawns it names the model it serves (RBEE_MODEL_ID); by hand, it is "echo"
    return { modelId: process.env.RBEE_MODEL_ID || "echo", slots: 2, contextSize: 4096 };
  },

  async infer(request, { emit, signal }) {
    const words = (request.prompt ?? request.messages.at(-1).content).match(/\s*\S+/g) ?? [];
    const limit = Math.min(words.length, request.max_tokens ?? words.length, config.max_words ?? words.length);
    let text = "";
    for (let i = 0; i < limit; i++) {
      if (signal.aborted) return { text, tokensGenerated: i, promptTokens: words.length, finishReason: "cancelled" };
      const piece = shape(words[i]);
      await emit(piece, 1); // streams the piece, honouring the client's backpressure
      text += piece;
    }
    const finishReason = limit < words.length ? "length" : "stop";
    return { text, tokensGenerated: limit, promptTokens: words.length, finishReason };
  },

  async dispose() {},
};

// a hive gives it a port in RBEE_WORKER_PORT; by hand, PORT or 9400
await runWorker(echo, { port: Number(process.env.PORT ?? process.env.RBEE_WORKER_PORT ?? 9400) });
