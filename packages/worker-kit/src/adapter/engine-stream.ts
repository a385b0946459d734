import type { IncomingMessage } from "node:http";
import { parseJson, RbeeError, type SseMessage, SseParser } from "@rbee/contract";

/**
 * What an engine stream's items are handed to: returning a promise pauses reading until it settles
 * (the client's backpressure), "stop" ends the stream there, a throw ends it with that error.
 */
export type StreamItemHandler<T> = (item: T) => "stop" | Promise<unknown> | undefined;

/**
 * Turns a stream's text into items: `push` the text as it arrives, `end` at its end. It hands each
 * item to `emit`, and a part that cannot be an item to `fail` (which ends the stream).
 */
export interface StreamFormat<T> {
  open(emit: (item: T) => void, fail: (why: string) => void): { push(text: string): void; end(): void };
}

/** Server-sent events (llama-server, vLLM, TensorRT-LLM): each event, as SseParser reads it. */
export const SSE_FORMAT: StreamFormat<SseMessage> = {
  open: (emit) => new SseParser(emit),
};

/** Newline-delimited JSON (Ollama): each non-blank line, which must be a JSON object. */
export const NDJSON_FORMAT: StreamFormat<Record<string, unknown>> = {
  open(emit, fail) {
    let pending = "";
    const line = (text: string) => {
      if (text.trim() === "") return;
      const parsed = parseJson(text);
      if (!parsed.ok || typeof parsed.value !== "object" || parsed.value === null || Array.isArray(parsed.value)) {
        fail(`a line that is not a JSON object: ${text.slice(0, 120)}`);
        return;
      }
      emit(parsed.value as Record<string, unknown>);
    };
    return {
      push(text) {
        pending += text;
        for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n")) {
          const text = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          line(text);
        }
      },
      end() {
        line(pending);
        pending = "";
      },
    };
  },
};

/**
 * Reads an engine's streamed reply (already checked for an error status) in `format` and hands
 * each item to `onItem`, on the per-token path with no promise per item. Resolves at the stream's
 * end, at "stop", or when `signal` aborts. A part that is not an item, or a connection that closes
 * before the stream's end (the engine died or restarted), is an RbeeError (502,
 * `engine_stream_broken`), never a hang. The connection is closed at the end, never pooled:
 * llama-server announces keep-alive on a stream but closes the connection after it, so a socket
 * reused for the next request would fail ("socket hang up").
 */
export function readEngineStream<T>(
  res: IncomingMessage,
  format: StreamFormat<T>,
  o: { name: string; signal?: AbortSignal },
  onItem: StreamItemHandler<T>,
): Promise<void> {
  const decoder = new TextDecoder();
  return new Promise<void>((resolve, reject) => {
    let done = false;
    const finish = (err?: unknown) => {
      if (done) return;
      done = true;
      res.destroy();
      if (err === undefined || o.signal?.aborted) resolve();
      else reject(err);
    };
    const broken = (why: string) =>
      new RbeeError(`the stream from ${o.name} broke: ${why}`, {
        statusCode: 502,
        code: "engine_stream_broken",
        retryable: true,
      });
    const parser = format.open(
      (item) => {
        if (done) return;
        let next: "stop" | Promise<unknown> | undefined;
        try {
          next = onItem(item);
        } catch (err) {
          finish(err);
          return;
        }
        if (next === "stop") finish();
        else if (next !== undefined) {
          res.pause();
          next.then(() => {
            if (!done) res.resume();
          }, finish);
        }
      },
      (why) => finish(broken(why)),
    );
    res.on("data", (chunk: Buffer) => {
      if (!done) parser.push(decoder.decode(chunk, { stream: true }));
    });
    res.on("end", () => {
      if (!done) {
        parser.push(decoder.decode());
        parser.end();
      }
      finish();
    });
    res.on("error", (err) => finish(broken(err.message)));
    res.on("close", () => finish(res.complete ? undefined : broken("the connection closed mid-stream")));
  });
}
