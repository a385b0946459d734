import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ChildHandle, describeWorkerConformance, REPO_ROOT } from "@rbee/testing";
import { describe, expect, it } from "vitest";

// The custom worker of docs/worker-contract.md, run as its readers would run it, must pass the
// same contract suite as the bespoke workers.
let child: ChildHandle | undefined;

describeWorkerConformance("the echo example of docs/worker-contract.md", {
  start: async () => {
    child = new ChildHandle(process.execPath, [join(REPO_ROOT, "examples/echo-worker.mjs")], {
      env: { PORT: "0", RBEE_LOG_LEVEL: "info" },
    });
    const ready = await child.waitForLine(/^\{.*"msg":"worker ready".*\}$/m);
    const url = (JSON.parse(ready[0]) as { url: string }).url;
    const c = child;
    return { url, model: "echo", prompt: "Once upon a time there was a worker", terminate: () => c.stop() };
  },
  stop: async () => {
    await child?.stop();
  },
  skip: { json_schema: "the echo worker has no grammar engine", stop: "the echo worker ignores stop strings" },
});

describe("docs/worker-contract.md", () => {
  it("shows the example exactly as examples/echo-worker.mjs has it", () => {
    const doc = readFileSync(join(REPO_ROOT, "docs/worker-contract.md"), "utf8");
    const example = readFileSync(join(REPO_ROOT, "examples/echo-worker.mjs"), "utf8");
    expect(doc).toContain("```js\n" + example + "```");
  });
});
