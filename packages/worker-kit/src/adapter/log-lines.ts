import { StringDecoder } from "node:string_decoder";

/** Longest line kept whole; a longer one is cut into pieces of this size (an engine that prints no newline). */
const MAX_LINE = 16 * 1024;

/**
 * Splits a byte stream into lines (LF or CRLF; a lone CR ends a progress line too), decoding UTF-8
 * across chunk borders. `end()` hands over a last line without its newline.
 */
export class LineSplitter {
  #decoder = new StringDecoder("utf8");
  #partial = "";

  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: Buffer | string): void {
    const text = this.#partial + (typeof chunk === "string" ? chunk : this.#decoder.write(chunk));
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this.#emit(text.slice(start, i));
      if (c === 13 && text.charCodeAt(i + 1) === 10) i++;
      start = i + 1;
    }
    let rest = text.slice(start);
    while (rest.length > MAX_LINE) {
      this.#emit(rest.slice(0, MAX_LINE));
      rest = rest.slice(MAX_LINE);
    }
    this.#partial = rest;
  }

  end(): void {
    const rest = this.#partial + this.#decoder.end();
    this.#partial = "";
    if (rest !== "") this.#emit(rest);
  }

  #emit(line: string): void {
    const trimmed = line.trimEnd();
    if (trimmed !== "") this.onLine(trimmed);
  }
}

/** The last `size` lines of a log, for error messages. */
export class LogTail {
  #lines: string[] = [];

  constructor(readonly size = 40) {}

  push(line: string): void {
    this.#lines.push(line);
    if (this.#lines.length > this.size) this.#lines.splice(0, this.#lines.length - this.size);
  }

  lines(count = this.size): string[] {
    return this.#lines.slice(-count);
  }
}
