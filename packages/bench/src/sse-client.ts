import { Agent, request } from "node:http";

const agent = new Agent({ keepAlive: true, maxSockets: 64 });

export interface StreamTiming {
  /** From sending the request to the first frame that carries text. */
  ttftMs: number;
  totalMs: number;
  /** Frames that carried text. */
  pieces: number;
  /** Raw body, for callers that read usage or a done event out of it. */
  body: string;
}

/**
 * POSTs a JSON body and times the SSE answer with node:http, the leanest client there is: on a
 * 2-core machine a heavier client would compete with the servers it measures. `hasText` says
 * whether a chunk of the body carries a token (workers: `event: token`; OpenAI: a non-empty delta).
 */
export function timedStream(
  url: string,
  body: unknown,
  hasText: (chunk: string) => number,
  headers: Record<string, string> = {},
): Promise<StreamTiming> {
  const payload = JSON.stringify(body);
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: "POST", agent, headers: { "content-type": "application/json", ...headers } },
      (res) => {
        let ttft = -1;
        let pieces = 0;
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          const n = hasText(chunk);
          if (n > 0 && ttft < 0) ttft = performance.now() - t0;
          pieces += n;
          text += chunk;
        });
        res.on("end", () => {
          if (res.statusCode !== 200) reject(new Error(`HTTP ${res.statusCode}: ${text.slice(0, 300)}`));
          else resolve({ ttftMs: ttft, totalMs: performance.now() - t0, pieces, body: text });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}

/** Counts occurrences of `needle` in `haystack`. */
export function count(haystack: string, needle: string): number {
  let n = 0;
  for (let i = haystack.indexOf(needle); i >= 0; i = haystack.indexOf(needle, i + needle.length)) n++;
  return n;
}
