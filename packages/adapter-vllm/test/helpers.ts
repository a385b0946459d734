import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import {
  type EngineFlavor,
  OpenAiEngineFixture,
  type OpenAiEngineFixtureOptions,
  type StartedWorker,
  startWorker,
} from "@rbee/testing";

export const FIXTURE_MODEL = "fixture-model";

/** The vLLM or TensorRT-LLM API FIXTURE (not the engine) in this process, on a free port. */
export async function startFixture(
  flavor: EngineFlavor,
  o: Omit<OpenAiEngineFixtureOptions, "flavor"> = {},
): Promise<OpenAiEngineFixture> {
  const f = new OpenAiEngineFixture({ flavor, ...o });
  await f.start();
  return f;
}

/** `rbee worker serve <vllm|trtllm> --<type>-url <fixture>` serving `model`. */
export function startAttached(
  fixture: OpenAiEngineFixture,
  args: string[] = [],
  model = FIXTURE_MODEL,
): Promise<StartedWorker> {
  const type = fixture.flavor;
  return startWorker(type, [`--${type}-url`, fixture.url, "--parallel", "2", "--heartbeat-interval", "0.5", ...args], {
    model,
  });
}

/** A stand-in for a hive's heartbeat endpoint: records every worker heartbeat it is sent. */
export async function startHeartbeatSink(): Promise<{
  url: string;
  heartbeats: Record<string, unknown>[];
  stop: () => Promise<void>;
}> {
  const heartbeats: Record<string, unknown>[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => {
      body += c.toString("utf8");
    });
    req.on("end", () => {
      if (req.url === "/v1/worker-heartbeat") heartbeats.push(JSON.parse(body) as Record<string, unknown>);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ ack: true, commands: [] }));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, heartbeats, stop: () => new Promise<void>((r) => server.close(() => r())) };
}
