import { execFile } from "node:child_process";
import { open, stat } from "node:fs/promises";
import type { EngineId } from "./layout.js";

/** What `<binary> --version` said, or why the binary cannot be used. */
export type VersionProbe =
  | {
      ok: true;
      /**
       * llama.cpp's version as the binary prints it: "0.5.0-dev (build 1, commit de3ff81)" (builds from
       * node-llama-cpp's bundle), "7000 (de3ff81)" (llama.cpp's releases). Undefined for a
       * ggml-rpc-server, which has no `--version` (it is recognised by its usage text).
       */
      version?: string;
      build?: number;
      commit?: string;
    }
  | { ok: false; error: string };

/** How long `--version` may take before the binary counts as hung. */
export const DEFAULT_PROBE_TIMEOUT_MS = 5000;

/**
 * Reads llama.cpp's version line out of a binary's `--version` output (stderr):
 * `version: 7000 (de3ff81)` or `version: 0.5.0-dev (build 1, commit de3ff81)`.
 */
export function parseLlamaVersion(output: string): { version: string; build?: number; commit?: string } | undefined {
  const line = /^version:\s*(.+?)\s*$/m.exec(output)?.[1];
  if (!line) return undefined;
  const parsed: { version: string; build?: number; commit?: string } = { version: line };
  const build = /^(\d+)\s*\(|\bbuild (\d+)/.exec(line);
  if (build) parsed.build = Number(build[1] ?? build[2]);
  const commit = /\bcommit ([0-9a-f]{7,40})\b|\(([0-9a-f]{7,40})\)/.exec(line);
  if (commit) parsed.commit = commit[1] ?? commit[2];
  return parsed;
}

/**
 * Ollama's version, as `ollama --version` prints it: `ollama version is 0.5.7`, or, with no server
 * running, `Warning: client version is 0.5.7`.
 */
export function parseOllamaVersion(output: string): { version: string } | undefined {
  const v = /\b(?:ollama|client) version is\s+(\S+)/.exec(output)?.[1];
  return v === undefined ? undefined : { version: v };
}

/** vLLM's version, as `vllm --version` prints it: a line holding only the version, `0.10.1` (or `0.10.1rc2.dev5+g...`). */
export function parseVllmVersion(output: string): { version: string } | undefined {
  const v = /^\s*v?(\d+\.\d+(?:\.\d+)?\S*)\s*$/m.exec(output)?.[1];
  return v === undefined ? undefined : { version: v };
}

/**
 * ggml-rpc-server knows no `--version`: it prints its usage (and exits 0). Recognised by that text:
 * "Usage: ./ggml-rpc-server [options]" and its --host/--port options.
 */
export function looksLikeRpcServerUsage(output: string): boolean {
  return (
    /rpc-server \[options\]/.test(output) ||
    (/--host\b/.test(output) && /--port\b/.test(output) && /--device\b/.test(output))
  );
}

/** The first bytes of an executable program: ELF, the Mach-O variants, or a `#!` script. */
function looksExecutable(head: Buffer): boolean {
  if (head.length >= 2 && head[0] === 0x23 && head[1] === 0x21) return true; // #!
  if (head.length < 4) return false;
  const magic = head.readUInt32BE(0);
  return (
    magic === 0x7f454c46 || // ELF
    magic === 0xfeedface ||
    magic === 0xfeedfacf ||
    magic === 0xcefaedfe ||
    magic === 0xcffaedfe ||
    magic === 0xcafebabe // universal binary
  );
}

function firstLine(text: string): string {
  return (
    text
      .split("\n")
      .map((l) => l.trim())
      .find((l) => l !== "") ?? ""
  );
}

/**
 * Runs `<path> --version` (no shell, with a time limit) and reads llama.cpp's version line (for
 * `expect: "ggml-rpc-server"`, its usage text stands in for the version it does not print). Never
 * throws: a missing, non-executable, corrupt, hanging or failing binary answers `ok: false` with the
 * reason, in words that name the OS error (ENOENT, EACCES, ENOEXEC).
 */
export async function probeVersion(
  path: string,
  timeoutMs = DEFAULT_PROBE_TIMEOUT_MS,
  expect?: EngineId,
): Promise<VersionProbe> {
  try {
    const s = await stat(path);
    if (!s.isFile()) return { ok: false, error: "not a file" };
    const fh = await open(path, "r");
    try {
      const head = Buffer.alloc(4);
      const { bytesRead } = await fh.read(head, 0, 4, 0);
      // glibc's execvp hands a file without a known header to /bin/sh: refuse it before it runs as a script
      if (!looksExecutable(head.subarray(0, bytesRead))) {
        return {
          ok: false,
          error: "not an executable program (no ELF, Mach-O or #! header): exec format error (ENOEXEC)",
        };
      }
    } finally {
      await fh.close();
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === "ENOENT") return { ok: false, error: "not found (ENOENT)" };
    return { ok: false, error: `cannot be read: ${e.message}` };
  }
  return new Promise((resolve) => {
    try {
      execFile(
        path,
        // trtllm-serve (a click command) has no --version: its usage says what it is, and the
        // adapter reads its version from the server's /version
        [expect === "trtllm-serve" ? "--help" : "--version"],
        { timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 1024 * 1024, encoding: "utf8", windowsHide: true },
        (error, stdout, stderr) => {
          const output = `${stderr}\n${stdout}`;
          if (error) {
            const code = (error as NodeJS.ErrnoException).code;
            if (code === "EACCES") resolve({ ok: false, error: "not executable: permission denied (EACCES)" });
            else if (typeof code === "string") resolve({ ok: false, error: `cannot be run: ${error.message}` });
            else if (error.killed || error.signal)
              resolve({
                ok: false,
                error: `\`--version\` did not finish within ${timeoutMs} ms${error.signal ? ` (stopped with ${error.signal})` : ""}`,
              });
            else {
              const said = firstLine(output);
              resolve({
                ok: false,
                error: `\`--version\` exited with code ${error.code}${said === "" ? "" : `: ${said}`}`,
              });
            }
            return;
          }
          if (expect === "vllm" || expect === "trtllm-serve") {
            const said = firstLine(output);
            const v = expect === "vllm" ? parseVllmVersion(output) : undefined;
            if (v) resolve({ ok: true, ...v });
            else if (expect === "trtllm-serve" && /trtllm-serve/.test(output)) resolve({ ok: true });
            else
              resolve({
                ok: false,
                error: `not ${expect === "vllm" ? "vLLM: `--version` printed no version" : "trtllm-serve: `--help` did not name trtllm-serve"}${said === "" ? "" : ` (it printed: ${said.slice(0, 120)})`}`,
              });
            return;
          }
          if (expect === "ollama") {
            const ollama = parseOllamaVersion(output);
            if (ollama) resolve({ ok: true, ...ollama });
            else {
              const said = firstLine(output);
              resolve({
                ok: false,
                error: `not Ollama: \`--version\` printed no "ollama version is ..." line${said === "" ? "" : ` (it printed: ${said.slice(0, 120)})`}`,
              });
            }
            return;
          }
          const parsed = parseLlamaVersion(output);
          if (!parsed) {
            if (expect === "ggml-rpc-server" && looksLikeRpcServerUsage(output)) {
              resolve({ ok: true });
              return;
            }
            const said = firstLine(output);
            resolve({
              ok: false,
              error: `not a llama.cpp binary: \`--version\` printed no "version: ..." line${said === "" ? "" : ` (it printed: ${said.slice(0, 120)})`}`,
            });
            return;
          }
          resolve({ ok: true, ...parsed });
        },
      );
    } catch (err) {
      resolve({ ok: false, error: `cannot be run: ${(err as Error).message}` });
    }
  });
}

/**
 * {@link probeVersion} with its answers kept in memory by (path, mtime, size, inode): a hive that
 * lists its engines every minute runs each binary once, and again only when the file changes.
 */
export class VersionProbeCache {
  /** One answer per path (the last one), with the file identity it was for. */
  readonly #results = new Map<string, { key: string; result: Promise<VersionProbe> }>();

  async probe(path: string, timeoutMs = DEFAULT_PROBE_TIMEOUT_MS, expect?: EngineId): Promise<VersionProbe> {
    let key: string;
    try {
      const s = await stat(path);
      key = `${s.mtimeMs}:${s.size}:${s.ino}:${expect ?? ""}`;
    } catch {
      this.#results.delete(path);
      return probeVersion(path, timeoutMs, expect); // missing now: answer, remember nothing
    }
    const known = this.#results.get(path);
    if (known?.key === key) return known.result;
    const result = probeVersion(path, timeoutMs, expect);
    this.#results.set(path, { key, result });
    // a timeout may be a busy machine rather than a broken binary: ask again next time
    void result.then((r) => {
      if (!r.ok && r.error.includes("did not finish") && this.#results.get(path)?.result === result) {
        this.#results.delete(path);
      }
    });
    return result;
  }

  clear(): void {
    this.#results.clear();
  }
}
