import { availableParallelism, loadavg } from "node:os";

/** Bytes of weights per compute thread below which another thread costs more in sync than it gains. */
export const BYTES_PER_THREAD = 256 * 1024 * 1024;

export interface ThreadChoice {
  threads: number;
  /** Why this many, in words, for the log line. */
  reason: string;
}

/**
 * How many CPU threads a worker should compute with, from the real core count, the load on the machine
 * and the model's size; never more than the cores.
 *
 * llama.cpp's threads spin and wait for each other on every operation, so a thread costs a fixed
 * amount of synchronisation per token. On a small model that cost dominates (measured here on
 * stories260K: 1 thread ≈ 1,500 tokens/s, 2 threads ≈ 80 on 2 idle cores), and on a loaded machine a
 * thread that must wait for a core stalls all others. So: one thread per 256 MiB of weights, capped by
 * the cores that are not already busy (1-minute load average), at least 1.
 */
export function chooseThreadCount(options: { modelBytes: number; cores?: number; load?: number }): ThreadChoice {
  const cores = Math.max(1, options.cores ?? availableParallelism());
  const load = Math.max(0, options.load ?? loadavg()[0] ?? 0);
  const idle = Math.max(1, Math.floor(cores - load + 0.5));
  const bySize = Math.max(1, Math.ceil(options.modelBytes / BYTES_PER_THREAD));
  const threads = Math.min(cores, idle, bySize);
  let reason: string;
  if (threads === bySize) reason = `model of ${Math.round(options.modelBytes / 2 ** 20)} MiB needs no more`;
  else if (threads === idle && idle < cores) reason = `${cores} cores, load ${load.toFixed(1)}`;
  else reason = `${cores} cores`;
  return { threads, reason };
}

/** Validates a thread count given by a user: a whole number from 1 to the cores here. */
export function checkThreadCount(threads: number, cores = availableParallelism()): number {
  if (!Number.isInteger(threads) || threads < 1)
    throw new Error(`--threads must be a whole number ≥ 1, got ${threads}`);
  if (threads > cores) {
    throw new Error(`--threads ${threads} is more than the ${cores} cores of this machine; use at most ${cores}`);
  }
  return threads;
}
