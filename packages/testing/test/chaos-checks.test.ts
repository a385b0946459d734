import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { catalogViolations, markedProcesses } from "../src/chaos/chaos-checks.js";
import { CHAOS_MARKER, type ChaosCluster } from "../src/chaos/chaos-cluster.js";
import { ChaosLoad } from "../src/chaos/chaos-load.js";
import { requireStoriesModel, STORIES_SHA256 } from "../src/paths.js";

/** The chaos suite's checks must catch what they look for: each is shown a violation here. */
describe("chaos checks", () => {
  it("a catalog entry reported Available whose file is short or differs is a violation; Downloading ones and good ones are not", () => {
    const root = mkdtempSync(join(tmpdir(), "rbee-chaos-checks-"));
    const stories = readFileSync(requireStoriesModel());
    const entry = (id: string, status: string, bytes: Buffer) => {
      mkdirSync(join(root, "models", id), { recursive: true });
      writeFileSync(join(root, "models", id, "m.gguf"), bytes);
      const files = [{ path: "m.gguf", size_bytes: stories.length, sha256: STORIES_SHA256 }];
      writeFileSync(join(root, "models", id, "metadata.json"), JSON.stringify({ artifact: { id, status, files } }));
    };
    entry("good", "Available", stories);
    entry("short", "Available", stories.subarray(0, 1000));
    const flipped = Buffer.from(stories);
    flipped[500_000] = (flipped[500_000] ?? 0) ^ 1;
    entry("flipped", "Available", flipped);
    entry("partial", "Downloading", stories.subarray(0, 10));
    mkdirSync(join(root, "models", "in-place"), { recursive: true });
    copyFileSync(requireStoriesModel(), join(root, "copy.gguf"));
    writeFileSync(
      join(root, "models", "in-place", "metadata.json"),
      JSON.stringify({
        artifact: {
          id: "in-place",
          status: "Available",
          files: [{ path: join(root, "copy.gguf"), size_bytes: stories.length }],
        },
      }),
    );
    try {
      const cluster = { hives: [{ id: "h", cacheDir: root }] } as unknown as ChaosCluster;
      const { checked, violations } = catalogViolations(cluster);
      expect(checked).toBe(4);
      expect(violations.filter((v) => v.includes("good") || v.includes("partial") || v.includes("in-place"))).toEqual(
        [],
      );
      expect(violations.filter((v) => v.includes("short"))).toHaveLength(3); // size, recorded sha256, the model's
      expect(violations.filter((v) => v.includes("flipped"))).toHaveLength(2); // recorded sha256, the model's
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("finds the processes of a run by the marker in their environment, and only those", async () => {
    const marker = `/tmp/rbee-chaos-marker-${process.pid}`;
    const sleeper = (env: NodeJS.ProcessEnv) =>
      spawn(process.execPath, ["-e", "setTimeout(() => {}, 30000)"], { env: { ...process.env, ...env } });
    const ours = sleeper({ [CHAOS_MARKER]: marker });
    const other = sleeper({ [CHAOS_MARKER]: `${marker}-other` });
    try {
      await new Promise((r) => setTimeout(r, 300));
      const found = markedProcesses(marker);
      expect([...found.keys()]).toEqual([ours.pid]);
    } finally {
      ours.kill("SIGKILL");
      other.kill("SIGKILL");
    }
  });

  describe("how a request of the load ends", () => {
    let server: Server;
    let url = "";
    let queenDown = false;
    beforeAll(async () => {
      server = createServer((req, res) => {
        const path = req.url ?? "";
        if (path.startsWith("/ok")) {
          res.writeHead(200, { "content-type": "text/event-stream" });
          res.end('data: {"choices":[]}\n\ndata: [DONE]\n\n');
        } else if (path.startsWith("/error-chunk")) {
          res.writeHead(200, { "content-type": "text/event-stream" });
          res.end('data: {"error":{"message":"worker died","code":"worker_unavailable"}}\n\n');
        } else if (path.startsWith("/cut")) {
          res.writeHead(200, { "content-type": "text/event-stream" });
          res.end('data: {"choices":[]}\n\n');
        } else if (path.startsWith("/bare-500")) {
          res.writeHead(500).end("oops");
        } else if (path.startsWith("/openai-503")) {
          res.writeHead(503, { "content-type": "application/json" });
          res.end('{"error":{"message":"no worker","type":"server_error","code":"worker_unavailable"}}');
        } else if (path.startsWith("/drop")) {
          req.socket.destroy();
        } // /hang: never answers
      });
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    });

    const outcome = (path: string, stream = true) =>
      new ChaosLoad({
        queenUrl: () => `${url}${path}`,
        apiKey: () => "k",
        model: "m",
        clients: 0,
        timeoutMs: 3000, // a loaded machine answers slowly; only /hang reaches it
        seed: 1,
        queenDownDuring: () => queenDown,
      }).request(stream);

    it("a success, an error chunk and an OpenAI error are clear; a cut stream, a bare 500, a hang and a drop while the queen is up are not", async () => {
      const ok = await outcome("/ok");
      expect(ok, JSON.stringify(ok)).toMatchObject({ outcome: "ok" });
      expect(await outcome("/error-chunk")).toMatchObject({ outcome: "stream error worker_unavailable" });
      expect((await outcome("/error-chunk")).unclear).toBeUndefined();
      expect(await outcome("/openai-503")).toMatchObject({ outcome: "503 worker_unavailable" });
      expect((await outcome("/cut")).unclear).toMatch(/stream cut without an error while the queen was up/);
      expect((await outcome("/bare-500")).unclear).toMatch(/HTTP 500 without an error body/);
      expect(await outcome("/hang")).toMatchObject({ outcome: "hang" });
      expect((await outcome("/drop")).unclear).toMatch(/while the queen was up/);
      queenDown = true;
      const dropped = await outcome("/drop");
      expect(dropped.unclear).toBeUndefined();
      expect(dropped.outcome).toMatch(/\(queen killed\)$/);
      queenDown = false;
    });
  });
});
