// A complete rbee worker: it "generates" by echoing the prompt back word by word.
import { runWorker } from "@rbee/worker-kit";

const echo = {
  workerType: "echo",
  implementation: "echo-example",
  version: "1.0.0",
  capabilities: ["completion", "chat"],

  async load() {
    return { modelId: "echo", slots: 2, contextSize: 4096 };
  },

  async infer(request, { emit, signal }) {
    const words = (request.prompt ?? request.messages.at(-1).content).match(/\s*\S+/g) ?? [];
    const limit = Math.min(words.length, request.max_tokens ?? words.length);
    let text = "";
    for (let i = 0; i < limit; i++) {
      if (signal.aborted) return { text, tokensGenerated: i, promptTokens: words.length, finishReason: "cancelled" };
      await emit(words[i], 1); // streams the piece, honouring the client's backpressure
      text += words[i];
    }
    const finishReason = limit < words.length ? "length" : "stop";
    return { text, tokensGenerated: limit, promptTokens: words.length, finishReason };
  },

  async dispose() {},
};

await runWorker(echo, { port: Number(process.env.PORT ?? 9400) });
