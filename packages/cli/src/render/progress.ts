import { formatAmount, formatRate } from "./format.js";

/** A job's `progress` event, as far as rendering goes. */
export interface ProgressUpdate {
  done: number;
  total: number | null;
  unit: string;
  label?: string;
  rate?: number;
}

/** Where progress goes: stderr, or a test's buffer. */
export interface ProgressOutput {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

function percent(p: ProgressUpdate): number | undefined {
  if (p.total === null || p.total <= 0) return undefined;
  return Math.max(0, Math.min(100, Math.floor((p.done / p.total) * 100)));
}

function amounts(p: ProgressUpdate): string {
  const done = formatAmount(p.done, p.unit);
  const total = p.total !== null && p.total > 0 ? ` of ${formatAmount(p.total, p.unit)}` : "";
  const rate = p.rate !== undefined && p.rate > 0 ? `, ${formatRate(p.rate, p.unit)}` : "";
  return `${done}${total}${rate}`;
}

/** One plain line: "downloading model: 42% (12 MiB of 30 MiB, 5 MiB/s)", or "...: 12 MiB" without a total. */
export function describeProgress(p: ProgressUpdate): string {
  const label = p.label ?? "progress";
  const pct = percent(p);
  return pct === undefined ? `${label}: ${amounts(p)}` : `${label}: ${pct}% (${amounts(p)})`;
}

/** A bar that fits `columns`: "downloading model [########--------]  42% 12 MiB of 30 MiB, 5 MiB/s". */
export function renderBar(p: ProgressUpdate, columns = 80): string {
  const label = p.label ?? "progress";
  const pct = percent(p);
  const tail = pct === undefined ? amounts(p) : `${String(pct).padStart(3)}% ${amounts(p)}`;
  const room = columns - label.length - tail.length - 5;
  if (pct === undefined || room < 10) return `${label} ${tail}`.slice(0, Math.max(1, columns - 1));
  const barWidth = Math.min(40, room);
  const filled = Math.round((pct / 100) * barWidth);
  return `${label} [${"#".repeat(filled)}${"-".repeat(barWidth - filled)}] ${tail}`;
}

/**
 * Renders job progress for a person. On a terminal: one bar, redrawn in place, with narration
 * lines printed above it. Elsewhere (pipes, CI, log files): plain lines, one per 10% step, or one
 * every few seconds when the total is unknown, so that a log does not fill with redraws.
 */
export class ProgressDisplay {
  readonly #out: ProgressOutput;
  readonly #tty: boolean;
  readonly #now: () => number;
  #bar: string | undefined;
  #lastDraw = 0;
  #lastLabel: string | undefined;
  #lastStep = -1;
  #lastLineAt = Number.NEGATIVE_INFINITY;

  constructor(out: ProgressOutput, options: { tty?: boolean; now?: () => number } = {}) {
    this.#out = out;
    this.#tty = options.tty ?? out.isTTY === true;
    this.#now = options.now ?? Date.now;
  }

  /** A line of narration; on a terminal the bar is lifted, the line printed, and the bar drawn again. */
  line(text: string): void {
    if (this.#tty && this.#bar !== undefined) {
      this.#out.write(`\r\x1b[2K${text}\n${this.#bar}`);
      return;
    }
    this.#out.write(`${text}\n`);
  }

  progress(p: ProgressUpdate): void {
    const label = p.label ?? "progress";
    const finished = p.total !== null && p.total > 0 && p.done >= p.total;
    if (this.#tty) {
      const now = this.#now();
      // redraw at most 20 times a second, but always draw the first and the last state
      if (this.#bar !== undefined && label === this.#lastLabel && !finished && now - this.#lastDraw < 50) return;
      this.#lastDraw = now;
      this.#lastLabel = label;
      this.#bar = renderBar(p, this.#out.columns ?? 80);
      this.#out.write(`\r\x1b[2K${this.#bar}`);
      if (finished) {
        this.#out.write("\n");
        this.#bar = undefined;
      }
      return;
    }
    const pct = percent(p);
    const now = this.#now();
    if (label !== this.#lastLabel) {
      this.#lastLabel = label;
      this.#lastStep = -1;
      this.#lastLineAt = Number.NEGATIVE_INFINITY;
    }
    if (pct !== undefined) {
      const step = finished ? 10 : Math.floor(pct / 10);
      if (step === this.#lastStep) return;
      this.#lastStep = step;
    } else if (now - this.#lastLineAt < 2000) {
      return;
    }
    this.#lastLineAt = now;
    this.#out.write(`${describeProgress(p)}\n`);
  }

  /** Ends a bar still on screen (its line is kept), so that what follows starts on a fresh line. */
  finish(): void {
    if (this.#tty && this.#bar !== undefined) this.#out.write("\n");
    this.#bar = undefined;
  }
}
