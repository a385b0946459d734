import { ProgressDisplay, type ProgressOutput, type ProgressUpdate } from "./progress.js";

/** "queen: spawning llm worker on cpu"; a message that already names its source is left as it is. */
export function narrationLine(e: { source: string; message: string; level?: string | undefined }): string {
  const body = e.level === "warn" ? `warning: ${e.message}` : e.level === "error" ? `error: ${e.message}` : e.message;
  if (e.source === "" || e.message.startsWith(`${e.source}:`)) return body;
  return `${e.source}: ${body}`;
}

/** Where a command's narration and progress go: stderr, never stdout, so that output stays clean. */
export interface Narrator {
  say(line: string): void;
  progress(p: ProgressUpdate): void;
  /** Ends a progress bar still on screen. */
  finish(): void;
}

/** A narrator on stderr (a bar on a terminal, plain lines otherwise); `quiet` silences it. */
export function stderrNarrator(quiet = false, out: ProgressOutput = process.stderr): Narrator {
  if (quiet) return { say() {}, progress() {}, finish() {} };
  const display = new ProgressDisplay(out);
  return {
    say: (line) => display.line(line),
    progress: (p) => display.progress(p),
    finish: () => display.finish(),
  };
}
