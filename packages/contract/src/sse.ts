/** One Server-Sent Event as a client receives it. */
export interface SseMessage {
  event: string;
  data: string;
  id: string | undefined;
}

/**
 * Parses a byte stream of Server-Sent Events (the WHATWG format: `event:`, `data:`, `id:`,
 * comments, CRLF or LF line ends, multi-line data). Events without a name are `message`.
 */
export async function* parseSse(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseMessage> {
  const decoder = new TextDecoder();
  let buffer = "";
  let event = "";
  let data: string[] = [];
  let id: string | undefined;
  let lastId: string | undefined;
  const flushLines = function* (final: boolean): Generator<SseMessage> {
    for (;;) {
      const nl = buffer.search(/\r\n|\r|\n/);
      if (nl < 0) break;
      // a lone \r at the end might be the first half of \r\n: wait for more bytes
      if (!final && buffer[nl] === "\r" && nl === buffer.length - 1) break;
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + (buffer.startsWith("\r\n", nl) ? 2 : 1));
      if (line === "") {
        if (data.length > 0) {
          lastId = id ?? lastId;
          yield { event: event || "message", data: data.join("\n"), id: lastId };
        }
        event = "";
        data = [];
        id = undefined;
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
      else if (field === "id" && !value.includes("\0")) id = value;
    }
  };
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    yield* flushLines(false);
  }
  buffer += decoder.decode();
  yield* flushLines(true);
}
