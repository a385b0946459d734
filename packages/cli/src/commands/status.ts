import { Command } from "commander";
import { clientOf, configOf, printJson } from "../context.js";
import { CliError, EXIT } from "../exit-codes.js";
import type { QueenClient } from "../queen-client.js";
import { describeClusterEvent, renderCluster } from "../render/cluster.js";

interface StatusFlags {
  watch?: boolean;
  json?: boolean;
}

/** `rbee status`: the cluster as the queen sees it. */
export function statusCommand(): Command {
  return new Command("status")
    .description("show the cluster: hives, their devices and free memory, workers and their load")
    .option(
      "-w, --watch",
      "follow changes (GET /v1/events) until Ctrl+C: redraw on a terminal, one line per event otherwise",
    )
    .option("--json", "print the snapshot as JSON (with --watch: one event per line)")
    .action(async (flags: StatusFlags, cmd: Command) => {
      const client = clientOf(configOf(cmd));
      if (!flags.watch) {
        const cluster = await client.cluster();
        if (flags.json) printJson(cluster);
        else process.stdout.write(`${renderCluster(cluster)}\n`);
        return;
      }
      await watch(client, flags.json === true);
    });
}

async function watch(client: QueenClient, json: boolean): Promise<void> {
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  const tty = process.stdout.isTTY === true && !json;
  let timer: NodeJS.Timeout | undefined;
  let drawing = false;
  const redraw = async () => {
    if (drawing || abort.signal.aborted) return;
    drawing = true;
    try {
      const view = renderCluster(await client.cluster());
      if (!abort.signal.aborted)
        process.stdout.write(`\x1b[H\x1b[2J${view}\n\n(watching ${client.url}; Ctrl+C to stop)\n`);
    } catch {
      // the event stream reports a lost queen
    } finally {
      drawing = false;
    }
  };
  // idle times and rates change without events: refresh the screen every 2 s as well
  const refresh = tty ? setInterval(() => void redraw(), 2000) : undefined;
  try {
    for await (const event of client.events(abort.signal)) {
      if (json) printJson(event, true);
      else if (!tty) process.stdout.write(`${describeClusterEvent(event)}\n`);
      else {
        clearTimeout(timer);
        timer = setTimeout(() => void redraw(), event.type === "snapshot" ? 0 : 100);
      }
    }
  } catch (err) {
    if (!abort.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
    clearInterval(refresh);
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  }
  if (!abort.signal.aborted) throw new CliError(`the queen at ${client.url} closed the event stream`, EXIT.unavailable);
}
