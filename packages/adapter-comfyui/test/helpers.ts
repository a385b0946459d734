import { ComfyUiFixture, type StartedWorker, startWorker } from "@rbee/testing";

export const FIXTURE_CHECKPOINT = "fixture-sd15.safetensors";

/** The ComfyUI API FIXTURE (not ComfyUI) in this process, on a free port. */
export async function startFixture(o: ConstructorParameters<typeof ComfyUiFixture>[0] = {}): Promise<ComfyUiFixture> {
  return new ComfyUiFixture(o).start();
}

/** `rbee worker serve comfyui --comfyui-url <fixture>` serving `model` (a checkpoint name). */
export function startAttached(
  fixture: ComfyUiFixture,
  args: string[] = [],
  model = "fixture-sd15",
): Promise<StartedWorker> {
  return startWorker("comfyui", ["--comfyui-url", fixture.url, ...args], { model });
}
