import { parseJson, RbeeError } from "@rbee/contract";
import { readBody, sendRequest, UnreachableError } from "@rbee/server-kit";
import { EngineHttpError, readEngineError } from "@rbee/worker-kit";

/**
 * POSTs `body` to an Ollama NDJSON endpoint (`/api/generate`, `/api/chat`, `/api/pull`) and hands
 * each line, parsed, to `onLine`. When `onLine` returns a promise, reading pauses until it settles
 * (the client's backpressure); "stop" ends the stream there; a throw ends it with that error. An
 * error status throws EngineHttpError with Ollama's words. A line that is not JSON, or a connection
 * that closes before the stream's end (Ollama died or restarted), is an RbeeError
 * (`engine_stream_broken`), never a hang. Aborting `signal` closes the connection (Ollama then stops
 * generating) and resolves.
 */
export async function streamNdjson(
  url: string,
  body: unknown,
  o: { signal?: AbortSignal; what: string; timeoutMs?: number },
  onLine: (value: Record<string, unknown>) => "stop" | Promise<unknown> | undefined,
): Promise<void> {
  const path = new URL(url).pathname;
  let res: Awaited<ReturnType<typeof sendRequest>>;
  try {
    res = await sendRequest(url, {
      method: "POST",
      body,
      headers: { accept: "application/x-ndjson" },
      signal: o.signal,
      timeoutMs: o.timeoutMs,
      what: o.what,
    });
  } catch (err) {
    if (o.signal?.aborted) return;
    if (err instanceof UnreachableError) {
      throw new RbeeError(`${o.what} does not answer: ${err.message}`, {
        statusCode: 503,
        code: "engine_unreachable",
        retryable: true,
        cause: err,
      });
    }
    throw err;
  }
  const status = res.statusCode ?? 500;
  if (status >= 400) {
    const text = await readBody(res).catch(() => "");
    throw new EngineHttpError(readEngineError(status, text), path);
  }
  const decoder = new TextDecoder();
  await new Promise<void>((resolve, reject) => {
    let done = false;
    let pending = "";
    const finish = (err?: unknown) => {
      if (done) return;
      done = true;
      res.destroy();
      if (err === undefined || o.signal?.aborted) resolve();
      else reject(err);
    };
    const broken = (why: string) =>
      new RbeeError(`the stream from ${o.what} broke: ${why}`, {
        statusCode: 502,
        code: "engine_stream_broken",
        retryable: true,
      });
    const line = (text: string) => {
      if (done || text.trim() === "") return;
      const parsed = parseJson(text);
      if (!parsed.ok || typeof parsed.value !== "object" || parsed.value === null || Array.isArray(parsed.value)) {
        finish(broken(`a line that is not a JSON object: ${text.slice(0, 120)}`));
        return;
      }
      let next: "stop" | Promise<unknown> | undefined;
      try {
        next = onLine(parsed.value as Record<string, unknown>);
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
    };
    res.on("data", (chunk: Buffer) => {
      pending += decoder.decode(chunk, { stream: true });
      let nl = pending.indexOf("\n");
      while (nl >= 0 && !done) {
        const text = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        line(text);
        nl = pending.indexOf("\n");
      }
    });
    res.on("end", () => {
      pending += decoder.decode();
      line(pending);
      pending = "";
      finish();
    });
    res.on("error", (err) => finish(broken(err.message)));
    res.on("close", () => finish(res.complete ? undefined : broken("the connection closed mid-stream")));
  });
}
