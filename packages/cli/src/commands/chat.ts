import { createInterface } from "node:readline";
import type { ChatMessage } from "@rbee/contract";
import { Command } from "commander";
import { clientOf, configOf, printJson } from "../context.js";
import { ensureLocalCluster } from "../ensure-cluster.js";
import { CliError, EXIT } from "../exit-codes.js";
import { modelRef } from "../model-ref.js";
import type { QueenClient } from "../queen-client.js";
import { type Narrator, stderrNarrator } from "../render/narration.js";
import { JobCancelledError, runJob } from "../run-job.js";
import { asInferResult, TokenWriter } from "./infer-output.js";
import { addSamplingOptions, type SamplingFlags, samplingFields } from "./sampling.js";

interface ChatFlags extends SamplingFlags {
  model: string;
  system?: string;
  json?: boolean;
  quiet?: boolean;
  autostart: boolean;
}

const HELP = "/reset clears the conversation, /exit (or Ctrl+D) quits, Ctrl+C stops a reply";

/** `rbee chat`: a conversation over infer jobs with `messages`; the worker applies the model's chat template. */
export function chatCommand(): Command {
  const cmd = new Command("chat")
    .description(
      "chat with a model: one message per line, replies stream back; the history is kept until /reset. Reads stdin line by line when it is not a terminal",
    )
    .requiredOption("-m, --model <model>", "a model id, or the path of a GGUF file on this machine")
    .option("-s, --system <text>", "a system message that starts the conversation");
  addSamplingOptions(cmd)
    .option("--json", "print each reply's result as one line of JSON instead of streaming it")
    .option("-q, --quiet", "no narration on stderr")
    .option("--no-autostart", "fail (exit 3) instead of starting the queen and a hive when the queen is not running")
    .action(async (flags: ChatFlags, command: Command) => {
      const config = configOf(command);
      const client = clientOf(config);
      const narrator = stderrNarrator(flags.quiet === true);
      if (flags.autostart) await ensureLocalCluster(client, config, narrator);
      await chatLoop(client, flags, narrator);
    });
  return cmd;
}

async function chatLoop(client: QueenClient, flags: ChatFlags, narrator: Narrator): Promise<void> {
  const tty = process.stdin.isTTY === true;
  const rl = createInterface({
    input: process.stdin,
    output: tty ? process.stdout : undefined,
    terminal: tty,
    prompt: "> ",
  });
  const start: ChatMessage[] = flags.system ? [{ role: "system", content: flags.system }] : [];
  let history: ChatMessage[] = [...start];
  let reply: AbortController | undefined;
  // Ctrl+C stops the reply being generated; at the prompt it quits
  const onInterrupt = () => {
    if (reply) reply.abort();
    else rl.close();
  };
  rl.on("SIGINT", onInterrupt);
  process.on("SIGINT", onInterrupt);
  const model = modelRef(flags.model);
  const out = new TokenWriter();
  if (tty) {
    process.stderr.write(`chatting with ${flags.model} (${HELP})\n`);
    rl.prompt();
  }
  try {
    for await (const line of rl) {
      const text = line.trim();
      if (text === "/exit" || text === "/quit") break;
      if (text === "/reset") {
        history = [...start];
        narrator.say("(conversation cleared)");
      } else if (text === "/help" || (text.startsWith("/") && !text.includes(" "))) {
        process.stderr.write(`${text === "/help" ? "" : `unknown command ${text}; `}${HELP}\n`);
      } else if (text !== "") {
        history.push({ role: "user", content: line });
        reply = new AbortController();
        try {
          const { result } = await runJob(
            client,
            { type: "infer", model, messages: history, ...samplingFields(flags) },
            {
              narrator,
              cancel: reply.signal,
              onToken: flags.json ? undefined : (t) => out.write(t),
            },
          );
          const r = asInferResult(result);
          if (flags.json) printJson(result, true);
          else if (!out.wrote) out.write(r.text);
          out.end();
          history.push({ role: "assistant", content: r.text });
        } catch (err) {
          out.end();
          history.pop(); // the unanswered message leaves the history
          if (err instanceof JobCancelledError) narrator.say("(reply cancelled)");
          else if (!tty || !(err instanceof CliError) || err.exitCode === EXIT.unavailable) throw err;
          else process.stderr.write(`rbee: ${err.message}\n`);
        } finally {
          reply = undefined;
        }
      }
      if (tty) rl.prompt();
    }
  } finally {
    process.off("SIGINT", onInterrupt);
    rl.close();
    if (tty) process.stdout.write("\n");
  }
}
