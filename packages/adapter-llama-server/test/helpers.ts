import { readFileSync } from "node:fs";
import type { ChildHandle } from "@rbee/testing";

export interface Serving {
  engine_pid: number;
  engine_url: string;
  guard: string;
  /** The API key the adapter gave its llama-server (read from the engine's environment). */
  key: string;
}

/**
 * The adapter's "llama-server serving" log line: the engine's pid, URL and guard, and the key to talk
 * to that llama-server directly, as only a process of the same user can: from /proc/<pid>/environ.
 */
export async function serving(child: ChildHandle): Promise<Serving> {
  const m = await child.waitForLine(/^\{.*"msg":"llama-server serving".*\}$/m);
  const line = JSON.parse(m[0]) as Omit<Serving, "key">;
  const environ = readFileSync(`/proc/${line.engine_pid}/environ`, "utf8").split("\0");
  const key = environ.find((v) => v.startsWith("LLAMA_API_KEY="))?.slice("LLAMA_API_KEY=".length) ?? "";
  return { ...line, key };
}
