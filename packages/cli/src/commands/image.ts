import { writeFile } from "node:fs/promises";
import { extname } from "node:path";
import { MAX_IMAGES_PER_REQUEST } from "@rbee/contract/light";
import { Command, InvalidArgumentError } from "commander";
import { clientOf, configOf, printJson } from "../context.js";
import { ensureLocalCluster } from "../ensure-cluster.js";
import { CliError, EXIT } from "../exit-codes.js";
import { intArg, workerTypeArg } from "../parse.js";
import { stderrNarrator } from "../render/narration.js";
import { interruptSignal, runJob } from "../run-job.js";

interface ImageFlags {
  model: string;
  prompt: string;
  output: string;
  negative?: string;
  n?: number;
  size?: { width: number; height: number };
  steps?: number;
  seed?: number;
  type?: string;
  json?: boolean;
  quiet?: boolean;
  autostart: boolean;
}

/** What an image job's `done` event carries (read leniently). */
interface ImageResult {
  images: { data: string; mime_type?: string; seed?: number; width?: number; height?: number }[];
  model?: string;
  worker_id?: string;
  duration_ms?: number;
}

/** `--size 768x512`: each side 64 to 4096 pixels, a multiple of 8. */
function sizeArg(value: string): { width: number; height: number } {
  const m = /^(\d+)x(\d+)$/.exec(value);
  const sides = m ? [Number(m[1]), Number(m[2])] : [];
  if (!m || sides.some((s) => s < 64 || s > 4096 || s % 8 !== 0)) {
    throw new InvalidArgumentError(
      `expected WIDTHxHEIGHT in pixels, each 64 to 4096 and a multiple of 8 (such as 512x512 or 768x512), got '${value}'`,
    );
  }
  return { width: sides[0] as number, height: sides[1] as number };
}

/** Where image i of n goes: the file given for one image; bee-1.png, bee-2.png, ... for several. */
export function imagePaths(output: string, n: number): string[] {
  if (n === 1) return [output];
  const ext = extname(output);
  const stem = ext === "" ? output : output.slice(0, -ext.length);
  return Array.from({ length: n }, (_, i) => `${stem}-${i + 1}${ext || ".png"}`);
}

/** `rbee image`: generates images with a model that makes them, saves them, narrates the progress. */
export function imageCommand(): Command {
  return new Command("image")
    .description(
      "generate an image from a prompt and save it; progress on stderr (a bar on a terminal). Starts the queen and this machine's hive when they are not running",
    )
    .requiredOption("-m, --model <model>", "a model that generates images (for ComfyUI: a checkpoint name)")
    .requiredOption("-p, --prompt <text>", "what the image shows")
    .option("-o, --output <file>", "the PNG file to write (several images: file-1.png, file-2.png, ...)", "image.png")
    .option("--negative <text>", "what the image must not show (the negative prompt)")
    .option("-n, --n <count>", `images to generate (1 to ${MAX_IMAGES_PER_REQUEST})`, intArg(1, MAX_IMAGES_PER_REQUEST))
    .option("-s, --size <WxH>", "width x height in pixels (default: the worker's, 512x512)", sizeArg)
    .option("--steps <n>", "sampling steps (default: the workflow's, 20)", intArg(1, 200))
    .option("--seed <n>", "makes the image repeatable (default: a random one, printed)", intArg(0, 0xffff_ffff))
    .option(
      "--type <worker-type>",
      "the worker type to start when no worker serves the model (default: comfyui)",
      workerTypeArg,
    )
    .option("--json", "print the result (files, seeds, worker) as JSON")
    .option("-q, --quiet", "no narration on stderr")
    .option("--no-autostart", "fail (exit 3) instead of starting the queen and a hive when the queen is not running")
    .action(async (flags: ImageFlags, command: Command) => {
      const config = configOf(command);
      const client = clientOf(config);
      const narrator = stderrNarrator(flags.quiet === true);
      if (flags.autostart) await ensureLocalCluster(client, config, narrator);
      const interrupt = interruptSignal();
      let result: ImageResult;
      try {
        const outcome = await runJob(
          client,
          {
            type: "image",
            model: flags.model,
            prompt: flags.prompt,
            negative_prompt: flags.negative,
            n: flags.n,
            width: flags.size?.width,
            height: flags.size?.height,
            steps: flags.steps,
            seed: flags.seed,
            worker_type: flags.type,
          },
          { narrator, cancel: interrupt.signal },
        );
        result = outcome.result as ImageResult;
      } finally {
        narrator.finish();
        interrupt.dispose();
      }
      if (!Array.isArray(result?.images) || result.images.length === 0) {
        throw new CliError("the queen answered the image job without images", EXIT.failure);
      }
      const paths = imagePaths(flags.output, result.images.length);
      const files = [];
      for (const [i, image] of result.images.entries()) {
        const path = paths[i] as string;
        try {
          await writeFile(path, Buffer.from(image.data, "base64"));
        } catch (err) {
          throw new CliError(`cannot write ${path}: ${(err as Error).message}`, EXIT.failure);
        }
        files.push({ path, seed: image.seed, width: image.width, height: image.height });
        const size = image.width && image.height ? `${image.width}x${image.height}, ` : "";
        narrator.say(`saved ${path} (${size}seed ${image.seed ?? "?"})`);
      }
      const secs = result.duration_ms !== undefined ? ` in ${(result.duration_ms / 1000).toFixed(1)} s` : "";
      narrator.say(
        `${files.length} image${files.length > 1 ? "s" : ""}${secs}, ${result.model} on worker ${result.worker_id}`,
      );
      if (flags.json)
        printJson({ files, model: result.model, worker_id: result.worker_id, duration_ms: result.duration_ms });
    });
}
