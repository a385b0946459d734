import { InvalidArgumentError } from "commander";

/** A commander argument parser for whole numbers in [min, max]. */
export function intArg(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isInteger(n) || n < min || n > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `from ${min} to ${max}`;
      throw new InvalidArgumentError(`expected a whole number ${range}, got '${value}'`);
    }
    return n;
  };
}

/** A commander argument parser for durations in seconds (decimals allowed), returned in milliseconds. */
export function secondsArg(min = 0): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isFinite(n) || n < min) {
      throw new InvalidArgumentError(`expected a number of seconds ≥ ${min}, got '${value}'`);
    }
    return Math.round(n * 1000);
  };
}

/** A commander argument parser for numbers in [min, max]. */
export function numberArg(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a number from ${min} to ${max}, got '${value}'`);
    }
    return n;
  };
}

/** An http(s) URL, without a trailing slash. */
export function urlArg(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError(`expected a URL like http://127.0.0.1:7835, got '${value}'`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new InvalidArgumentError(`expected an http:// or https:// URL, got '${value}'`);
  }
  return value.replace(/\/+$/, "");
}

/**
 * A commander argument parser for keep-alive durations, as the queen takes them (Ollama's style):
 * "30s", "5m", "1h", "250ms", a number of seconds, "forever" (or any negative number), 0 for
 * "stop as soon as the request is done". Returns the value to send: a number or a duration string.
 */
export function keepAliveArg(value: string): number | string {
  const text = value.trim();
  if (text === "forever" || text === "never") return -1;
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  if (/^-?\d+(\.\d+)?(ms|s|m|h)$/.test(text)) return text;
  throw new InvalidArgumentError(
    `expected a duration like 30s, 5m, 1h, 250ms, a number of seconds or 'forever', got '${value}'`,
  );
}

/** A commander argument parser for a repeatable option: every occurrence is added to the list. */
export function collect(value: string, previous: string[] | undefined): string[] {
  if (value === "") throw new InvalidArgumentError("must not be empty");
  return [...(previous ?? []), value];
}

/** A worker type id as --type takes it (whether a hive has it is the queen's to say). */
export function workerTypeArg(value: string): string {
  if (!/^[a-z][a-z0-9-]{0,39}$/.test(value)) {
    throw new InvalidArgumentError(
      `expected a worker type id such as llm or llama-server (see \`rbee worker types\`), got '${value}'`,
    );
  }
  return value;
}
