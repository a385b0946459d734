import { type ChildProcessByStdio, execFile, spawn } from "node:child_process";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import { promisify } from "node:util";
import { type DownloadResult, downloadFile } from "@rbee/downloader";
import { cachedGeneratedModel, type HubFaults, REPO_ROOT } from "@rbee/testing";
import { median, printTable, round } from "./stats.js";

const run = promisify(execFile);

export interface DownloadBenchOptions {
  /** The generated file's size. Default 1 GiB. */
  bytes?: number;
  /** Rounds of each contender, alternating. Default 5. */
  rounds?: number;
}

interface Case {
  mb_s: number[];
  mb_s_p50: number;
  /** Of the time, the checksum after the last byte (downloadFile only). */
  verify_ms_p50?: number;
}

export interface DownloadBenchResult {
  file_bytes: number;
  rounds: number;
  curl: Case;
  /** curl, then `openssl dgst -sha256` on its file: what a verified download costs with the usual tools. */
  curl_then_sha256?: Case;
  parts_1: Case;
  default_parts: Case & { parts: number };
  ratio_parts_1_vs_curl: number;
  ratio_default_vs_curl: number;
  resume: ResumeResult[];
}

export interface ResumeResult {
  case: string;
  file_bytes: number;
  /** Bytes the server sent in all: the file once, plus whatever had to be fetched again. */
  served_bytes: number;
  refetched_bytes: number;
  /** One part of the download (the whole file with one stream). */
  part_bytes: number;
  requests: number;
  ms: number;
}

/**
 * The test hub in a child process of its own (as a real server would be), so that neither the
 * downloader nor curl shares a CPU thread or an event loop with it. Each line on its stdin is a
 * command, `{"faults": {...}}` (replaces them) and/or `{"reset": true}` (the stats), answered with
 * a line of stats: body bytes served and file requests since the last reset.
 */
const HUB_SCRIPT = `
import { createInterface } from "node:readline";
const { startHubServer } = await import("@rbee/testing");
const hub = await startHubServer({ repos: { "bench/model": { files: { "model.gguf": { path: process.argv[1] } } } } });
console.log(JSON.stringify({ url: hub.url, sha256: hub.sha256("bench/model", "model.gguf") }));
for await (const line of createInterface({ input: process.stdin })) {
  const cmd = JSON.parse(line);
  if (cmd.faults) { for (const k of Object.keys(hub.faults)) delete hub.faults[k]; Object.assign(hub.faults, cmd.faults); }
  if (cmd.reset) hub.stats.reset();
  const files = hub.stats.requests.filter((r) => r.path.startsWith("/cdn/"));
  console.log(JSON.stringify({ bytes: hub.stats.bytesServed("model.gguf"), requests: files.length }));
}
await hub.close();
`;

class HubProcess {
  readonly #child: ChildProcessByStdio<Writable, Readable, null>;
  readonly #lines: AsyncIterator<string>;

  static async start(path: string): Promise<{ hub: HubProcess; url: string; sha256: string }> {
    const hub = new HubProcess(path);
    const first = await hub.#lines.next();
    if (first.done) throw new Error("the hub process exited before it listened");
    const { url, sha256 } = JSON.parse(first.value) as { url: string; sha256: string };
    return { hub, url, sha256 };
  }

  private constructor(path: string) {
    this.#child = spawn(process.execPath, ["--input-type=module", "-e", HUB_SCRIPT, path], {
      cwd: REPO_ROOT,
      stdio: ["pipe", "pipe", "inherit"],
    });
    this.#lines = createInterface({ input: this.#child.stdout })[Symbol.asyncIterator]();
  }

  async send(cmd: { faults?: HubFaults; reset?: boolean }): Promise<{ bytes: number; requests: number }> {
    this.#child.stdin.write(`${JSON.stringify(cmd)}\n`);
    const line = await this.#lines.next();
    if (line.done) throw new Error("the hub process exited");
    return JSON.parse(line.value) as { bytes: number; requests: number };
  }

  stop(): void {
    this.#child.kill();
  }
}

const mbPerS = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);

async function curlOnce(url: string, out: string): Promise<number> {
  const t0 = performance.now();
  await run("curl", ["-sS", "-L", "-o", out, url]);
  return performance.now() - t0;
}

async function hasOpenssl(): Promise<boolean> {
  return run("openssl", ["version"]).then(
    () => true,
    () => false,
  );
}

/**
 * Downloads a generated 1 GiB GGUF from the local test hub (in its own process) with downloadFile,
 * one stream and the default parts, against `curl -sS -L -o` on the same URL in the same run,
 * alternating, and reports medians. Then the resume cases: the connection drops at 40 % and
 * downloadFile retries; reported is what the server had to send in all against the file size.
 */
export async function benchDownload(o: DownloadBenchOptions = {}): Promise<DownloadBenchResult> {
  const rounds = o.rounds ?? 5;
  const model = await cachedGeneratedModel(o.bytes ?? 1024 ** 3);
  const size = (await stat(model.path)).size;
  const dir = await mkdtemp(join(tmpdir(), "rbee-bench-download-"));
  const { hub, url: hubUrl, sha256 } = await HubProcess.start(model.path);
  const url = `${hubUrl}/bench/model/resolve/main/model.gguf`;
  const openssl = await hasOpenssl();
  const curl: number[] = [];
  const curlSha: number[] = [];
  const one: DownloadResult[] = [];
  const dflt: DownloadResult[] = [];
  const target = (name: string) => ({ destPath: join(dir, name), partPath: join(dir, `${name}.part`) });
  try {
    // warm the page cache with the source once, for everyone
    await curlOnce(url, join(dir, "warm.bin"));
    await rm(join(dir, "warm.bin"));
    for (let i = 0; i < rounds; i++) {
      const out = join(dir, "curl.bin");
      const ms = await curlOnce(url, out);
      curl.push(ms);
      if (openssl) {
        const t0 = performance.now();
        await run("openssl", ["dgst", "-sha256", out]);
        curlSha.push(ms + performance.now() - t0);
      }
      await rm(out);
      one.push(await downloadFile({ url, ...target("one.gguf"), size, sha256, parts: 1 }));
      await rm(join(dir, "one.gguf"));
      dflt.push(await downloadFile({ url, ...target("default.gguf"), size, sha256 }));
      await rm(join(dir, "default.gguf"));
    }
    const caseOf = (ms: number[], results?: DownloadResult[]): Case => ({
      mb_s: ms.map((m) => round(mbPerS(size, m), 0)),
      mb_s_p50: round(mbPerS(size, median(ms)), 0),
      ...(results ? { verify_ms_p50: round(median(results.map((r) => r.verifyMs)), 0) } : {}),
    });
    const result: DownloadBenchResult = {
      file_bytes: size,
      rounds,
      curl: caseOf(curl),
      ...(openssl ? { curl_then_sha256: caseOf(curlSha) } : {}),
      parts_1: caseOf(
        one.map((r) => r.ms),
        one,
      ),
      default_parts: {
        parts: size >= 64 * 1024 * 1024 ? 4 : 1,
        ...caseOf(
          dflt.map((r) => r.ms),
          dflt,
        ),
      },
      ratio_parts_1_vs_curl: round(median(curl) / median(one.map((r) => r.ms)), 3),
      ratio_default_vs_curl: round(median(curl) / median(dflt.map((r) => r.ms)), 3),
      resume: [],
    };
    const p50 = (c: Case) => c.mb_s_p50;
    printTable([
      { case: "curl -sS -L -o", "MB/s p50": p50(result.curl), "× curl": 1, "checksum after last byte, ms": "-" },
      ...(result.curl_then_sha256
        ? [
            {
              case: "curl, then openssl sha256",
              "MB/s p50": p50(result.curl_then_sha256),
              "× curl": round(median(curl) / median(curlSha), 3),
              "checksum after last byte, ms": "(included)",
            },
          ]
        : []),
      {
        case: "downloadFile, parts=1 (sha256 on the fly)",
        "MB/s p50": p50(result.parts_1),
        "× curl": result.ratio_parts_1_vs_curl,
        "checksum after last byte, ms": result.parts_1.verify_ms_p50 ?? "",
      },
      {
        case: `downloadFile, default (${result.default_parts.parts} parts)`,
        "MB/s p50": p50(result.default_parts),
        "× curl": result.ratio_default_vs_curl,
        "checksum after last byte, ms": result.default_parts.verify_ms_p50 ?? "",
      },
    ]);

    // resume: the connection drops once at 40 % of a response; downloadFile retries with Range
    for (const parts of [1, 4]) {
      const partBytes = Math.ceil(size / parts);
      await hub.send({ faults: { dropAfterBytes: Math.round(partBytes * 0.4), dropOnce: true }, reset: true });
      const r = await downloadFile({ url, ...target("resume.gguf"), size, sha256, parts, retry: { baseDelayMs: 50 } });
      const stats = await hub.send({ faults: {} });
      await rm(join(dir, "resume.gguf"));
      result.resume.push({
        case: `drop at 40 % of a response, parts=${parts}`,
        file_bytes: size,
        served_bytes: stats.bytes,
        refetched_bytes: stats.bytes - size,
        part_bytes: partBytes,
        requests: stats.requests,
        ms: round(r.ms, 0),
      });
    }
    printTable(
      result.resume.map((r) => ({
        case: r.case,
        "served bytes": r.served_bytes,
        "file bytes": r.file_bytes,
        "fetched again": r.refetched_bytes,
        "one part": r.part_bytes,
        "file requests": r.requests,
      })),
    );
    return result;
  } finally {
    hub.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
