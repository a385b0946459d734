import { OllamaApiFixture, type StartedWorker, startWorker } from "@rbee/testing";

export const FIXTURE_MODEL = "fixture-llama";

/** The Ollama API FIXTURE (not Ollama) in this process, on a free port. */
export async function startFixture(
  o: ConstructorParameters<typeof OllamaApiFixture>[0] = {},
): Promise<OllamaApiFixture> {
  const f = new OllamaApiFixture(o);
  await f.start();
  return f;
}

/** `rbee worker serve ollama --ollama-url <fixture>` serving `model`. */
export function startAttached(
  fixture: OllamaApiFixture,
  args: string[] = [],
  model = FIXTURE_MODEL,
): Promise<StartedWorker> {
  return startWorker("ollama", ["--ollama-url", fixture.url, "--parallel", "2", ...args], { model });
}
