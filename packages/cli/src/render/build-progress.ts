import type { BuildEvent } from "@rbee/engines";
import type { ProgressOutput } from "./progress.js";

type Progress = Extract<BuildEvent, { type: "progress" }>;

const STAGE_WORDS: Record<Progress["stage"], string> = {
  clone: "cloning the source from the bundle",
  configure: "configuring (cmake)",
  compile: "compiling",
  install: "installing the binaries",
};

/** "llama.cpp de3ff81-cpu [##########----------]  42% llama" on one line that fits `columns`. */
export function renderBuildBar(p: Progress, columns = 80): string {
  const label = `llama.cpp ${p.id}`;
  if (p.stage !== "compile" || p.percent === undefined)
    return `${label}: ${STAGE_WORDS[p.stage]}`.slice(0, columns - 1);
  const what = [p.goal, p.target && p.target !== p.goal ? `(${p.target})` : undefined].filter(Boolean).join(" ");
  const tail = `${String(p.percent).padStart(3)}%${what ? ` ${what}` : ""}`;
  const room = columns - label.length - tail.length - 5;
  if (room < 10) return `${label} ${tail}`.slice(0, columns - 1);
  const width = Math.min(40, room);
  const filled = Math.round((p.percent / 100) * width);
  return `${label} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${tail}`;
}

/**
 * Shows a build for a person, on stderr. On a terminal: one bar redrawn in place, the build's
 * remarks printed above it. Elsewhere (a pipe, a log file, CI): plain lines, one per stage and one
 * per 10% of the compile, so that a CI log shows progress without filling up. `verbose` prints every
 * line of git's and CMake's output as well.
 */
export class BuildProgressView {
  readonly #out: ProgressOutput;
  readonly #tty: boolean;
  readonly #verbose: boolean;
  #bar: string | undefined;
  #lastDraw = 0;
  #lastStage: string | undefined;
  #lastStep = -1;

  constructor(out: ProgressOutput, o: { tty: boolean; verbose?: boolean }) {
    this.#out = out;
    this.#tty = o.tty;
    this.#verbose = o.verbose === true;
  }

  event(e: BuildEvent): void {
    switch (e.type) {
      case "say":
        this.#line(e.message);
        return;
      case "output":
        if (this.#verbose) this.#line(e.line);
        return;
      case "progress":
        this.#progress(e);
    }
  }

  /** Ends a bar still on screen, so that what follows starts on a fresh line. */
  finish(): void {
    if (this.#tty && this.#bar !== undefined) this.#out.write("\n");
    this.#bar = undefined;
  }

  #line(text: string): void {
    if (this.#tty && this.#bar !== undefined) this.#out.write(`\r\x1b[2K${text}\n${this.#bar}`);
    else this.#out.write(`${text}\n`);
  }

  #progress(p: Progress): void {
    const stage = `${p.id}:${p.stage}:${p.goal ?? ""}`;
    const changed = stage !== this.#lastStage;
    this.#lastStage = stage;
    if (this.#tty) {
      const now = Date.now();
      if (!changed && now - this.#lastDraw < 100) return;
      this.#lastDraw = now;
      this.#bar = renderBuildBar(p, this.#out.columns ?? 80);
      this.#out.write(`\r\x1b[2K${this.#bar}`);
      return;
    }
    if (changed) this.#lastStep = -1;
    if (p.stage === "compile" && p.percent !== undefined) {
      const step = Math.floor(p.percent / 10);
      if (step === this.#lastStep) return;
      this.#lastStep = step;
      const what = p.target && p.target !== p.goal ? ` (${p.target})` : "";
      this.#out.write(`llama.cpp ${p.id}: compiling${p.goal ? ` ${p.goal}` : ""} ${p.percent}%${what}\n`);
      return;
    }
    if (changed) this.#out.write(`llama.cpp ${p.id}: ${STAGE_WORDS[p.stage]}\n`);
  }
}
