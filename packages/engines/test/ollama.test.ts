import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { addEngine, EngineRefusedError, listEngines, parseOllamaVersion } from "../src/index.js";

const root = mkdtempSync(join(tmpdir(), "rbee-engines-ollama-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A stand-in `ollama` binary: prints what `ollama --version` prints. */
function fakeOllama(dir: string, said: string): string {
  const path = join(dir, "ollama");
  writeFileSync(path, `#!/bin/sh\necho "${said}"\n`, { mode: 0o755 });
  return path;
}

describe("the ollama engine", () => {
  it("reads Ollama's version line, with or without a server running", () => {
    expect(parseOllamaVersion("ollama version is 0.5.7")).toEqual({ version: "0.5.7" });
    expect(
      parseOllamaVersion("Warning: could not connect to a running Ollama instance\nWarning: client version is 0.6.2"),
    ).toEqual({ version: "0.6.2" });
    expect(parseOllamaVersion("version: 7000 (de3ff81)")).toBeUndefined();
  });

  it("is found on PATH and added with `rbee engine add ollama <path>`; a llama.cpp binary is refused as ollama", async () => {
    const bin = mkdtempSync(join(root, "bin-"));
    const path = fakeOllama(bin, "ollama version is 0.5.7");
    const found = await listEngines({ enginesDir: join(root, "engines"), env: { PATH: bin } });
    expect(found).toEqual([{ id: "ollama", path, source: "path", version: "0.5.7", status: "ok" }]);
    expect(await addEngine({ enginesDir: join(root, "engines"), id: "ollama", path })).toMatchObject({
      id: "ollama",
      version: "0.5.7",
    });
    const other = mkdtempSync(join(root, "llama-"));
    const llama = fakeOllama(other, "version: 7000 (de3ff81)");
    await expect(addEngine({ enginesDir: join(root, "engines"), id: "ollama", path: llama })).rejects.toThrow(
      EngineRefusedError,
    );
  });
});
