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
