import { type Hive, startHive } from "@rbee/hive";
import { type Queen, startQueen } from "@rbee/queen";
import { postJson, quietLog, requireStoriesModel, tempRbeeDirs, waitFor } from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * Issue 15, defect 9, through the queen: an API key may name model files only where the hive's
 * owner allows; the cluster's administrator (the cluster token, which the CLI on the queen's
 * machine sends) may name one anywhere outside system directories.
 */
describe("path models through the queen: API keys are limited, the administrator is not (issue 15: defect 9)", () => {
  let queen: Queen;
  let hive: Hive;
  let apiKey: string;
  const model = requireStoriesModel();

  beforeAll(async () => {
    const dirs = tempRbeeDirs("path-models");
    queen = await startQueen({
      log: quietLog("queen"),
      port: 0,
      configDir: dirs.configDir,
      cacheDir: dirs.cacheDir,
      heartbeatIntervalMs: 300,
    });
    apiKey = queen.keys.create("user").key;
    hive = await startHive({
      log: quietLog("hive"),
      port: 0,
      queenUrl: queen.url,
      hiveId: "paths",
      configDir: dirs.configDir,
      cacheDir: dirs.cacheDir,
      heartbeatIntervalMs: 300,
      workerPortStart: 20_000 + Math.floor(Math.random() * 30_000),
      // only the caches: the shared test models are outside
      env: { ...process.env, RBEE_DEVICES: "[]", RBEE_MODELS_DIRS: "", RBEE_MODELS_DIRS_ONLY: "1" },
    });
    await waitFor(() => (queen.registry.hives.get("paths")?.state === "live" ? true : undefined), 30_000);
  });
  afterAll(async () => {
    await hive?.close();
    await queen?.close();
  });

  const complete = (token: string, m: string) =>
    postJson(`${queen.url}/v1/completions`, { model: m, prompt: "Once upon a time", max_tokens: 4 }, { token });

  it("an API key gets the same answer for a real GGUF outside the allowed directories as for /etc/shadow", async () => {
    const answers = new Set<string>();
    for (const m of [model, "/etc/shadow", "/nonexistent/x.gguf", "/tmp"]) {
      const r = await complete(apiKey, m);
      expect(r.status, `${m}: ${r.text}`).toBe(404);
      expect(r.body.error.message).toMatch(/is not one this hive takes models from/);
      answers.add(`${r.status} ${r.body.error.message.replaceAll(m, "<path>")}`);
    }
    expect([...answers]).toHaveLength(1);
  });

  it("the cluster token (the CLI on the queen's machine) may use the file, but still not a system path", async () => {
    const ok = await complete(queen.clusterToken, model);
    expect(ok.status, ok.text).toBe(200);
    const system = await complete(queen.clusterToken, "/etc/x.gguf");
    expect(system.status, system.text).toBe(404);
    expect(system.body.error.message).toMatch(/is not one this hive takes models from/);
  });
});
