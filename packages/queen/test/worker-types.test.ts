import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { ClusterWorkerTypes } from "@rbee/contract";
import { type Hive, startHive } from "@rbee/hive";
import { type Queen, startQueen } from "@rbee/queen";
import {
  getJson,
  postJson,
  quietLog,
  requireLlamaServerOrSkip,
  requireStoriesModel,
  runJob,
  runRbee,
  tempRbeeDirs,
  waitFor,
} from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * Worker types through the queen, with a real queen, a real hive and real workers: the cluster-wide
 * catalog, --type on spawns and on `rbee infer`, errors for types that do not exist, and routing by
 * capability (a request reaches only workers whose type serves it).
 */
describe("queen: worker types and routing by capability", () => {
  const dirs = tempRbeeDirs("queen-types");
  let queen: Queen;
  let hive: Hive;
  const cli = (args: string[]) =>
    runRbee(args, { env: { ...dirs.env, RBEE_QUEEN_URL: queen.url, RBEE_API_KEY: "" }, timeoutMs: 60_000 });

  beforeAll(async () => {
    queen = await startQueen({
      log: quietLog("queen"),
      port: 0,
      configDir: dirs.configDir,
      cacheDir: dirs.cacheDir,
      heartbeatIntervalMs: 1000,
      sweepIntervalMs: 200,
    });
    hive = await startHive({
      log: quietLog("hive"),
      port: 0,
      queenUrl: queen.url,
      hiveId: "types-hive",
      configDir: dirs.configDir,
      cacheDir: dirs.cacheDir,
      heartbeatIntervalMs: 1000,
      workerPortStart: 20_000 + Math.floor(Math.random() * 30_000),
      env: { ...process.env, RBEE_DEVICES: "[]" },
    });
    await waitFor(() => (queen.registry.hives.get("types-hive")?.workerTypes ? true : undefined), 30_000);
  }, 60_000);
  afterAll(async () => {
    await hive?.close();
    await queen?.close();
  }, 60_000);

  it("GET /v1/worker-types shows each type, where it can run, and the default; `rbee worker types` prints it", async () => {
    const r = await getJson(`${queen.url}/v1/worker-types`);
    expect(r.status, r.text).toBe(200);
    const types = ClusterWorkerTypes.parse(r.body);
    expect(types.default_type).toBe("llm");
    expect(types.types.find((t) => t.id === "llm")).toMatchObject({
      available_on: ["types-hive"],
      capabilities: ["text-generation", "chat", "json_schema", "tools", "embeddings"],
    });
    expect(types.types.find((t) => t.id === "echo")?.available_on).toEqual(["types-hive"]);
    const out = await cli(["worker", "types"]);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toMatch(/^TYPE\s+HIVE\s+STATUS\s+RUNS ON\s+ENGINE\s+SERVES/m);
    expect(out.stdout).toMatch(/^llm\s+types-hive\s+available\s+cpu.*node-llama-cpp/m);
    expect(out.stdout).toMatch(/^echo\s+types-hive\s+available\s+cpu/m);
  });

  it("an unknown type is refused with the types the hives have, by the job API and by the CLI", async () => {
    const job = await runJob(queen.url, { type: "spawn_worker", model: requireStoriesModel(), worker_type: "sglang" });
    expect(job.error?.code).toBe("unknown_worker_type");
    expect(job.error?.message).toMatch(
      /unknown worker type 'sglang': the hives have (comfyui, )?echo, (llama-server, )?llm/,
    );
    const out = await cli(["worker", "spawn", "-m", requireStoriesModel(), "--type", "sglang"]);
    expect(out.code).not.toBe(0);
    expect(out.stderr).toMatch(/unknown worker type 'sglang'/);
    const badFlag = await cli(["worker", "spawn", "-m", "x", "--type", "Bad Type"]);
    expect(badFlag.code).not.toBe(0);
    expect(badFlag.stderr).toMatch(/worker type id/);
    expect(queen.registry.workers.size).toBe(0);
  });

  it("`rbee infer --type echo` starts a worker of that type for a model no catalog has", async () => {
    const out = await cli(["infer", "--type", "echo", "-m", "parrot", "-p", "hello there world", "--max-tokens", "2"]);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout.trim()).toBe("hello there");
    const worker = [...queen.registry.workers.values()].find((w) => w.report.model === "parrot");
    expect(worker?.report.worker_type).toBe("echo");
  });

  it("a request reaches only workers whose type serves it: embeddings pass an echo worker by and start an llm worker", async () => {
    // the model is in the hive's catalog, and an echo worker serves the same name
    await hive.resolveModel(requireStoriesModel());
    const spawned = await runJob(queen.url, { type: "spawn_worker", model: "stories260k", worker_type: "echo" });
    expect(spawned.error).toBeUndefined();
    expect(spawned.result.worker).toMatchObject({ worker_type: "echo", capabilities: ["text-generation", "chat"] });
    const echoId = spawned.result.worker.worker_id as string;

    const chat = await postJson(`${queen.url}/v1/chat/completions`, {
      model: "stories260k",
      messages: [{ role: "user", content: "tell me a story" }],
      max_tokens: 3,
    });
    expect(chat.status, chat.text).toBe(200);
    expect(chat.body.choices[0].message.content).toBe("tell me a");

    const embed = await postJson(`${queen.url}/v1/embeddings`, { model: "stories260k", input: "Once upon a time" });
    expect(embed.status, embed.text).toBe(200);
    expect(embed.body.data[0].embedding.length).toBeGreaterThan(0);

    // a request with tools needs the `tools` capability: the llm worker takes it, and on a model
    // without a chat template node-llama-cpp's general function-call format still parses
    const tools = await postJson(`${queen.url}/v1/chat/completions`, {
      model: "stories260k",
      messages: [{ role: "user", content: "What is the weather in Paris?" }],
      tools: [
        {
          type: "function",
          function: {
            name: "get_weather",
            parameters: { type: "object", properties: { city: { type: "string", maxLength: 20 } }, required: ["city"] },
          },
        },
      ],
      tool_choice: "required",
      max_tokens: 200,
      seed: 1,
    });
    expect(tools.status, tools.text).toBe(200);
    expect(tools.body.choices[0].finish_reason).toBe("tool_calls");
    const call = tools.body.choices[0].message.tool_calls[0];
    expect(call.function.name).toBe("get_weather");
    expect(typeof JSON.parse(call.function.arguments).city).toBe("string");
    const workers = [...queen.registry.workers.values()].filter((w) => w.report.model === "stories260k");
    expect(workers.map((w) => w.report.worker_type).sort()).toEqual(["echo", "llm"]);
    const echo = queen.registry.workers.get(echoId);
    expect(echo?.inFlight).toBe(0);
    // the echo worker never saw the embeddings and tools requests: it counts only the chat
    const counted = await waitFor(
      () => {
        const n = queen.registry.workers.get(echoId)?.report.heartbeat?.requests_total;
        return n !== undefined && n >= 1 ? n : undefined;
      },
      10_000,
      "the echo worker's heartbeat",
    );
    expect(counted).toBe(1);
    const cluster = await getJson(`${queen.url}/v1/cluster`);
    const shown = cluster.body.workers.find((w: { worker_id: string }) => w.worker_id === echoId);
    expect(shown.capabilities).toEqual(["text-generation", "chat"]);
  }, 120_000);
});

const LLAMA_SERVER = requireLlamaServerOrSkip();

/**
 * The llama-server type through the queen, on the real llama-server: `rbee worker spawn --type`,
 * `rbee infer --type`, and the OpenAI API for a queen whose default type is llama-server.
 */
describe.skipIf(LLAMA_SERVER === undefined)("queen: the llama-server type (the real llama-server)", () => {
  const dirs = tempRbeeDirs("queen-llama-server");
  const engines = join(dirs.root, "engines");
  let queen: Queen;
  let hive: Hive;
  const cli = (args: string[]) =>
    runRbee(args, { env: { ...dirs.env, RBEE_QUEEN_URL: queen.url, RBEE_API_KEY: "" }, timeoutMs: 120_000 });

  beforeAll(async () => {
    const added = await runRbee(["engine", "add", "llama-server", LLAMA_SERVER as string], {
      env: { RBEE_ENGINES_DIR: engines },
    });
    if (added.code !== 0) throw new Error(`rbee engine add failed: ${added.stderr}`);
    queen = await startQueen({
      log: quietLog("queen"),
      port: 0,
      configDir: dirs.configDir,
      cacheDir: dirs.cacheDir,
      heartbeatIntervalMs: 1000,
      sweepIntervalMs: 200,
      // models get llama-server workers unless a request or a minimum names another type
      defaultWorkerType: "llama-server",
    });
    hive = await startHive({
      log: quietLog("hive"),
      port: 0,
      queenUrl: queen.url,
      hiveId: "ls-hive",
      configDir: dirs.configDir,
      cacheDir: dirs.cacheDir,
      heartbeatIntervalMs: 1000,
      workerPortStart: 20_000 + Math.floor(Math.random() * 30_000),
      env: { ...process.env, RBEE_DEVICES: "[]", RBEE_ENGINES_DIR: engines },
    });
    await waitFor(
      () =>
        queen.registry.hives
          .get("ls-hive")
          ?.workerTypes?.some((t) => t.id === "llama-server" && t.status === "Available")
          ? true
          : undefined,
      30_000,
    );
  }, 90_000);
  afterAll(async () => {
    await hive?.close();
    await queen?.close();
  }, 60_000);

  it("the OpenAI API starts a llama-server worker for a model when that is the queen's default type", async () => {
    const r = await postJson(`${queen.url}/v1/completions`, {
      model: requireStoriesModel(),
      prompt: "Once upon a time",
      max_tokens: 12,
      temperature: 0,
    });
    expect(r.status, r.text).toBe(200);
    expect(r.body.choices[0].text).toMatch(/^, there was a little girl named Lily/);
    const workers = [...queen.registry.workers.values()];
    expect(workers.map((w) => w.report.worker_type)).toEqual(["llama-server"]);
    // placement counted its memory like any worker's
    expect(workers[0]?.memoryBytes).toBeGreaterThan(1024 * 1024);
  }, 120_000);

  it("`rbee worker spawn --type llm` and `rbee infer --type` choose the type of a new worker", async () => {
    const spawned = await cli(["worker", "spawn", "-m", "stories260k", "--type", "llm", "--json", "-q"]);
    expect(spawned.code, spawned.stderr).toBe(0);
    expect(JSON.parse(spawned.stdout)).toMatchObject({ worker_type: "llm", model: "stories260k" });
    const types = [...queen.registry.workers.values()].map((w) => w.report.worker_type).sort();
    expect(types).toEqual(["llama-server", "llm"]);
    // a model with no worker yet, asked for through `rbee infer --type llama-server`
    const copy = join(dirs.root, "tale.gguf");
    copyFileSync(requireStoriesModel(), copy);
    const out = await cli([
      "infer",
      "--type",
      "llama-server",
      "-m",
      copy,
      "-p",
      "Once upon a time",
      "--max-tokens",
      "8",
      "--temperature",
      "0",
    ]);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toMatch(/^, there was a little girl/);
    const tale = [...queen.registry.workers.values()].find((w) => w.report.model === "tale");
    expect(tale?.report.worker_type).toBe("llama-server");
  }, 120_000);
});
