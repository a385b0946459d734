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
