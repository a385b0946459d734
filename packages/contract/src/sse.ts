/** One Server-Sent Event as a client receives it. */
export interface SseMessage {
  event: string;
  data: string;
  id: string | undefined;
}

/**
 * An incremental, synchronous parser of the Server-Sent Events format (WHATWG: `event:`, `data:`,
 * `id:`, comments, CRLF or LF line ends, multi-line data). Feed it decoded text as it arrives;
 * it calls `onMessage` for every complete event. Events without a name are `message`.
 */
export class SseParser {
  #buffer = "";
  #event = "";
  #data: string[] = [];
  #id: string | undefined;
  #lastId: string | undefined;

  constructor(private readonly onMessage: (message: SseMessage) => void) {}

  push(text: string): void {
    this.#buffer = this.#buffer === "" ? text : this.#buffer + text;
    this.#lines(false);
  }

  /** The input ended: a last line without its newline is read (an unterminated event is dropped). */
  end(): void {
    this.#lines(true);
  }

  #lines(final: boolean): void {
    let buffer = this.#buffer;
    let start = 0;
    for (;;) {
      let nl = -1;
      for (let i = start; i < buffer.length; i++) {
        const c = buffer.charCodeAt(i);
        if (c === 10 || c === 13) {
          nl = i;
          break;
        }
      }
      if (nl < 0) break;
      // a lone \r at the end might be the first half of \r\n: wait for more text
      if (!final && buffer.charCodeAt(nl) === 13 && nl === buffer.length - 1) break;
      const line = buffer.slice(start, nl);
      start = nl + (buffer.charCodeAt(nl) === 13 && buffer.charCodeAt(nl + 1) === 10 ? 2 : 1);
      this.#line(line);
    }
    buffer = buffer.slice(start);
    if (final && buffer !== "") {
      this.#line(buffer);
      buffer = "";
    }
    // an event without its closing blank line at the end of the input is dropped, as the spec says
    this.#buffer = buffer;
  }

  #line(line: string): void {
    if (line === "") {
      if (this.#data.length > 0) {
        this.#lastId = this.#id ?? this.#lastId;
        const message = {
          event: this.#event || "message",
          data: this.#data.length === 1 ? (this.#data[0] as string) : this.#data.join("\n"),
          id: this.#lastId,
        };
        this.#event = "";
        this.#data = [];
        this.#id = undefined;
        this.onMessage(message);
        return;
      }
      this.#event = "";
      this.#id = undefined;
      return;
    }
    if (line.charCodeAt(0) === 58) return; // ":" comment
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === "data") this.#data.push(value);
    else if (field === "event") this.#event = value;
    else if (field === "id" && !value.includes("\0")) this.#id = value;
  }
}

/** Parses a byte stream of Server-Sent Events into messages (see SseParser). */
export async function* parseSse(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseMessage> {
  const decoder = new TextDecoder();
  const ready: SseMessage[] = [];
  const parser = new SseParser((m) => ready.push(m));
  for await (const chunk of body) {
    parser.push(decoder.decode(chunk, { stream: true }));
    while (ready.length > 0) yield ready.shift() as SseMessage;
  }
  parser.push(decoder.decode());
  parser.end();
  while (ready.length > 0) yield ready.shift() as SseMessage;
}
