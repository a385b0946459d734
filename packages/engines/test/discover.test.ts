import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { listEngines, VersionProbeCache } from "../src/index.js";

const root = mkdtempSync(join(tmpdir(), "rbee-engines-discover-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A stand-in llama-server: a shell script that prints llama.cpp's version line (and counts its runs). */
function fakeLlama(dir: string, name: string, build: number): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  writeFileSync(
    path,
    `#!/bin/sh\necho run >> "${path}.runs"\necho "version: ${build} (abc1234)" >&2\necho "built with a shell script" >&2\n`,
    { mode: 0o755 },
  );
  return path;
}

describe("listEngines", () => {
  it("never throws: a corrupt engines.json is a warning, an unreadable build record lists its binaries as broken", async () => {
    const engines = join(root, "corrupt");
    mkdirSync(join(engines, "llama.cpp", "abc1234-cpu", "bin"), { recursive: true });
    writeFileSync(join(engines, "engines.json"), "{ not json");
    writeFileSync(join(engines, "llama.cpp", "abc1234-cpu", "engine.json"), '{"engine": "llama.cpp"}');
    writeFileSync(join(engines, "llama.cpp", "abc1234-cpu", "bin", "llama-server"), "");
    mkdirSync(join(engines, "llama.cpp", ".build-abc1234-cpu"), { recursive: true }); // a work tree: not a build
    const warnings: string[] = [];
    const list = await listEngines({ enginesDir: engines, env: { PATH: "" }, onWarning: (m) => warnings.push(m) });
    expect(warnings).toEqual([expect.stringMatching(/engines\.json is not a valid file \(not JSON/)]);
    expect(list).toEqual([
      {
        id: "llama-server",
        path: join(engines, "llama.cpp", "abc1234-cpu", "bin", "llama-server"),
        source: "built",
        backend: "cpu",
        build_id: "abc1234-cpu",
        version: null,
        status: "broken",
        error: expect.stringMatching(/engine\.json is not a valid file/),
      },
    ]);
  });

  it("finds engines on PATH by every name, the first one a shell would run", async () => {
    const a = join(root, "path-a");
    const b = join(root, "path-b");
    fakeLlama(a, "llama-server", 10);
    fakeLlama(b, "llama-server", 20);
    fakeLlama(b, "rpc-server", 20);
    const list = await listEngines({ enginesDir: join(root, "none"), env: { PATH: `${a}:${b}` } });
    expect(list).toEqual([
      { id: "llama-server", path: join(a, "llama-server"), source: "path", version: "10 (abc1234)", status: "ok" },
      { id: "ggml-rpc-server", path: join(b, "rpc-server"), source: "path", version: "20 (abc1234)", status: "ok" },
    ]);
  });

  it("runs each binary once while it is unchanged, and again once it changes", async () => {
    const dir = join(root, "cached");
    const bin = fakeLlama(dir, "llama-server", 1);
    const cache = new VersionProbeCache();
    const opts = { enginesDir: join(root, "none"), env: { PATH: dir }, cache };
    await listEngines(opts);
    await listEngines(opts);
    await listEngines(opts);
    const runs = () => readFileSync(`${bin}.runs`, "utf8").split("\n").length - 1;
    expect(runs()).toBe(1);
    fakeLlama(dir, "llama-server", 2); // rewritten: another size, another mtime
    const list = await listEngines(opts);
    expect(list[0]?.version).toBe("2 (abc1234)");
  });
});
