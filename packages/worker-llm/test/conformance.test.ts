import { describeWorkerConformance, type StartedWorker, startLlmWorker } from "@rbee/testing";

let worker: StartedWorker | undefined;

describeWorkerConformance("llm worker on stories260K", {
  start: async () => {
    worker = await startLlmWorker(["--parallel", "2"]);
    const w = worker;
    return { url: w.url, model: w.model, prompt: "Once upon a time", terminate: () => w.child.stop() };
  },
  stop: async () => {
    await worker?.child.stop();
  },
});
