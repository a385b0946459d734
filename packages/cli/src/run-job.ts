import type { JobOperation } from "@rbee/contract";
import { isTerminalJobEvent, parseJson, readJobEvent } from "@rbee/contract/light";
import type { Command } from "commander";
import { clientOf, configOf } from "./context.js";
import { CliError, EXIT, exitCodeForError } from "./exit-codes.js";
import { type QueenClient, QueenNotAnsweringError } from "./queen-client.js";
import { type Narrator, narrationLine, stderrNarrator } from "./render/narration.js";

/** A job that was cancelled (by Ctrl+C here, or by someone else): exit 130. */
export class JobCancelledError extends CliError {
  constructor(reason = "cancelled") {
    super(reason, EXIT.interrupted);
    this.name = "JobCancelledError";
  }
}

export interface RunJobOptions {
  narrator: Narrator;
  onToken?: (text: string, index: number) => void;
  /** Aborting it cancels the job (DELETE /v1/jobs/{id}); runJob then waits for the queen to confirm. */
  cancel?: AbortSignal;
}

export interface JobOutcome {
  jobId: string;
  result: unknown;
}

/** Reconnects after a broken stream (Last-Event-ID resumes it) at most this often in a row. */
const MAX_RECONNECTS = 5;
/** How long a cancelled job may take to confirm before the CLI stops waiting. */
const CANCEL_CONFIRM_MS = 5000;

/**
 * Runs one job on the queen: creates it, follows its event stream to the end (narration and
 * progress to the narrator, tokens to `onToken`), and resolves its result. An `error` event
 * throws a CliError with the job's message (exit 4 for things not found); `cancelled` throws
 * JobCancelledError.
 */
export async function runJob(client: QueenClient, operation: JobOperation, o: RunJobOptions): Promise<JobOutcome> {
  if (o.cancel?.aborted) throw new JobCancelledError();
  const created = await client.createJob(operation);
  const streamAbort = new AbortController();
  let cancelRequested = false;
  let confirmTimer: NodeJS.Timeout | undefined;
  const onCancel = () => {
    cancelRequested = true;
    client.cancelJob(created.job_id).catch(() => streamAbort.abort());
    confirmTimer = setTimeout(() => streamAbort.abort(), CANCEL_CONFIRM_MS);
  };
  o.cancel?.addEventListener("abort", onCancel, { once: true });
  let lastSeq = -1;
  let reconnects = 0;
  try {
    for (;;) {
      try {
        for await (const msg of client.jobStream(created, lastSeq, streamAbort.signal)) {
          const parsed = parseJson(msg.data);
          const e = parsed.ok ? readJobEvent(parsed.value) : undefined;
          if (!e) continue; // an event this CLI does not know: skip it
          if (e.seq <= lastSeq) continue;
          lastSeq = e.seq;
          reconnects = 0;
          if (isTerminalJobEvent(e)) o.narrator.finish();
          switch (e.type) {
            case "narration":
              o.narrator.say(narrationLine(e));
              break;
            case "progress":
              o.narrator.progress(e);
              break;
            case "token":
              o.onToken?.(e.text, e.index);
              break;
            case "data":
              break;
            case "done":
              if (cancelRequested) throw new JobCancelledError();
              return { jobId: created.job_id, result: e.result };
            case "error":
              if (cancelRequested) throw new JobCancelledError();
              throw new CliError(e.message, exitCodeForError(e.code));
            case "cancelled":
              throw new JobCancelledError(
                cancelRequested ? "cancelled" : `the job was cancelled: ${e.reason ?? "no reason given"}`,
              );
          }
        }
        if (streamAbort.signal.aborted) throw new JobCancelledError();
        // the stream ended without a terminal event: the connection dropped; resume it
      } catch (err) {
        if (streamAbort.signal.aborted && cancelRequested) throw new JobCancelledError();
        if (!(err instanceof CliError) || err.exitCode !== EXIT.unavailable || reconnects >= MAX_RECONNECTS) throw err;
        // a queen that took the connection and went silent is stuck, not restarting: say so now
        if (err instanceof QueenNotAnsweringError) throw err;
      }
      if (reconnects >= MAX_RECONNECTS) {
        throw new CliError(`the event stream of job ${created.job_id} keeps ending early; gave up`, EXIT.unavailable);
      }
      reconnects++;
      await new Promise((r) => setTimeout(r, 250 * reconnects));
    }
  } finally {
    clearTimeout(confirmTimer);
    o.cancel?.removeEventListener("abort", onCancel);
    o.narrator.finish();
  }
}

/**
 * Ctrl+C handling for one operation: the first SIGINT aborts the returned signal (the caller
 * cancels its job and exits 130); a second one exits 130 at once. Call `dispose` when done.
 */
export function interruptSignal(): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const handler = () => {
    if (controller.signal.aborted) process.exit(EXIT.interrupted);
    controller.abort();
  };
  process.on("SIGINT", handler);
  return { signal: controller.signal, dispose: () => process.off("SIGINT", handler) };
}

/** Runs a job for a command: narration and progress on stderr (unless quiet), Ctrl+C cancels it (exit 130). */
export async function runWithNarration(cmd: Command, operation: JobOperation, quiet: boolean): Promise<unknown> {
  const client = clientOf(configOf(cmd));
  const interrupt = interruptSignal();
  try {
    return (await runJob(client, operation, { narrator: stderrNarrator(quiet), cancel: interrupt.signal })).result;
  } finally {
    interrupt.dispose();
  }
}
