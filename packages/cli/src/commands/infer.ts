import { Command } from "commander";
import { clientOf, configOf, printJson } from "../context.js";
import { ensureLocalCluster } from "../ensure-cluster.js";
import { CliError, EXIT } from "../exit-codes.js";
import { modelRef } from "../model-ref.js";
import { workerTypeArg } from "../parse.js";
import { stderrNarrator } from "../render/narration.js";
import { interruptSignal, runJob } from "../run-job.js";
import { asInferResult, describeInferResult, TokenWriter } from "./infer-output.js";
import { addSamplingOptions, type SamplingFlags, samplingFields } from "./sampling.js";

interface InferFlags extends SamplingFlags {
  model: string;
  prompt?: string;
  stream: boolean;
  json?: boolean;
  quiet?: boolean;
  autostart: boolean;
  type?: string;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** `rbee infer`: one raw completion, streamed. Starts the queen and a hive here when none runs. */
export function inferCommand(): Command {
  const cmd = new Command("infer")
    .description(
      "complete a raw prompt with a model (no chat template); tokens stream to stdout, narration to stderr. Starts the queen and this machine's hive when they are not running",
    )
    .requiredOption("-m, --model <model>", "a model id, or the path of a GGUF file on this machine")
    .option("-p, --prompt <text>", "the text to continue (default: read from stdin when it is not a terminal)")
    .option(
      "--type <worker-type>",
      "the worker type to start when no worker serves the model yet: llm, llama-server, ... (see `rbee worker types`)",
      workerTypeArg,
    );
  addSamplingOptions(cmd)
    .option("--no-stream", "print the text once, at the end")
    .option("--json", "print the job's result (text, token counts, finish reason, worker) as JSON")
    .option("-q, --quiet", "no narration on stderr")
    .option("--no-autostart", "fail (exit 3) instead of starting the queen and a hive when the queen is not running")
    .action(async (flags: InferFlags, command: Command) => {
      let prompt = flags.prompt;
      if (prompt === undefined) {
        if (process.stdin.isTTY) throw new CliError("give the prompt with -p/--prompt (or on stdin)", EXIT.usage);
        prompt = await readStdin();
      }
      const config = configOf(command);
      const client = clientOf(config);
      const narrator = stderrNarrator(flags.quiet === true);
      if (flags.autostart) await ensureLocalCluster(client, config, narrator);
      const out = new TokenWriter();
      const streaming = flags.stream && !flags.json;
      const interrupt = interruptSignal();
      try {
        const { result } = await runJob(
          client,
          {
            type: "infer",
            model: modelRef(flags.model),
            prompt,
            worker_type: flags.type,
            ...samplingFields(flags),
          },
          { narrator, cancel: interrupt.signal, onToken: streaming ? (text) => out.write(text) : undefined },
        );
        const r = asInferResult(result);
        if (flags.json) printJson(result);
        else if (streaming) out.end();
        else {
          out.write(r.text);
          out.end();
        }
        narrator.say(describeInferResult(r));
      } catch (err) {
        out.end(); // the error line starts on a line of its own
        throw err;
      } finally {
        interrupt.dispose();
      }
    });
  return cmd;
}
