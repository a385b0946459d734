import { copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger, isPidAlive } from "@rbee/server-kit";
import { requireStoriesModel } from "@rbee/testing";
import { type Hive, type HiveOptions, startHive } from "../../src/index.js";

export { isPidAlive };

export interface ApiReply {
  status: number;
  body: any;
  text: string;
}

/** Calls the hive's API with its cluster token (or another one, or none). */
export interface HiveApi {
  get(path: string, token?: string | null): Promise<ApiReply>;
  post(path: string, body: unknown, token?: string | null): Promise<ApiReply>;
  delete(path: string, token?: string | null): Promise<ApiReply>;
}

export interface TestHive {
  hive: Hive;
  api: HiveApi;
  /** A temporary directory holding the hive's cache and config dirs (and hive.log). */
  tmp: string;
  cacheDir: string;
  configDir: string;
  close(): Promise<void>;
}

/** A worker port range of its own for every test hive, so that test files running side by side rarely meet. */
export function randomPortBase(): number {
  return 20_000 + Math.floor(Math.random() * 30_000);
}

/**
 * A hive in this process on a free port, with temporary cache and config dirs, short heartbeats and
 * orphan timeout, and its log in `<tmp>/hive.log`. The device list is declared (RBEE_DEVICES=[]: the
 * real CPU, no GPU probing) unless `env` says otherwise.
 */
export async function startTestHive(options: HiveOptions = {}): Promise<TestHive> {
  const tmp = await mkdtemp(join(tmpdir(), "rbee-hive-test-"));
  const cacheDir = join(tmp, "cache");
  const configDir = join(tmp, "config");
  const hive = await startHive({
    port: 0,
    host: "127.0.0.1",
    hiveId: "test-hive",
    cacheDir,
    configDir,
    queenUrl: "http://127.0.0.1:1",
    heartbeatIntervalMs: 500,
    workerOrphanTimeoutMs: 5_000,
    readyTimeoutMs: 45_000,
    workerShutdownGraceMs: 2_000,
    stopGraceMs: 5_000,
    workerPortStart: randomPortBase(),
    log: createLogger({ service: "hive", destination: join(tmp, "hive.log"), level: "debug" }),
    ...options,
    // the model directories the test run allows (vitest.config.ts), unless the test says otherwise
    env: { RBEE_DEVICES: "[]", RBEE_MODELS_DIRS: process.env.RBEE_MODELS_DIRS ?? "", ...options.env },
  });
  return {
    hive,
    api: hiveApi(hive.url, hive.token),
    tmp,
    cacheDir,
    configDir,
    close: async () => {
      await hive.close();
      await rm(tmp, { recursive: true, force: true });
    },
  };
}

export function hiveApi(baseUrl: string, token: string): HiveApi {
  const call = async (method: string, path: string, body: unknown, given: string | null | undefined) => {
    const auth = given === undefined ? token : given;
    const headers: Record<string, string> = {};
    if (auth !== null) headers.authorization = `Bearer ${auth}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {}
    return { status: res.status, body: parsed, text };
  };
  return {
    get: (path, t) => call("GET", path, undefined, t),
    post: (path, body, t) => call("POST", path, body, t),
    delete: (path, t) => call("DELETE", path, undefined, t),
  };
}

/** A copy of the stories260K model at `path` (tests that later break the file work on a copy). */
export async function copyStoriesModel(path: string): Promise<string> {
  await copyFile(requireStoriesModel(), path);
  return path;
}

/** A file with the GGUF magic followed by garbage: the catalog takes it, llama.cpp fails to load it. */
export async function writeCorruptGguf(path: string): Promise<string> {
  const garbage = Buffer.alloc(4096);
  for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 131 + 17) % 251;
  await writeFile(path, Buffer.concat([Buffer.from("GGUF"), garbage]));
  return path;
}
