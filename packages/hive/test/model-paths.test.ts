import { mkdtemp, rm, symlink } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { STORIES_MODEL } from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyStoriesModel, startTestHive, type TestHive } from "./helpers/test-hive.js";

/**
 * Issue 15, defect 9: an API key could probe the hive's file system through absolute-path models
 * (`/etc/shadow` "is not a GGUF model", `/nonexistent/x.gguf` "no file at that path", `/tmp` "is
 * not a file") and relative paths were resolved against the hive's working directory.
 */
describe("path models: only where the hive's owner allows, every other path answered alike (issue 15: defect 9)", () => {
  let t: TestHive;
  let allowed: string;

  beforeAll(async () => {
    allowed = await mkdtemp(join(tmpdir(), "rbee-allowed-models-"));
    // only that directory besides the caches, the home and the working directory
    t = await startTestHive({ hiveId: "paths-hive", env: { RBEE_MODELS_DIRS: allowed } });
  });
  afterAll(async () => {
    await t?.close();
    await rm(allowed, { recursive: true, force: true });
  });

  const refused = [
    "/etc/shadow",
    "/etc/passwd",
    "/nonexistent/x.gguf",
    "/tmp",
    join(tmpdir(), "x.gguf"), // the test run allows the temporary directory; this hive does not
    "/proc/self/environ",
    "/etc/x.gguf",
    "/sys/kernel/x.gguf",
    join(homedir(), ".ssh", "id_rsa.gguf"),
    join(process.cwd(), ".git", "x.gguf"),
    join(process.cwd(), "package.json"),
    STORIES_MODEL, // a real GGUF, but outside the allowed directories
  ];

  it("every path outside the allowed places gets the same 403, for POST /v1/models and /v1/models/inspect", async () => {
    const answers = new Set<string>();
    for (const ref of refused) {
      for (const route of ["/v1/models", "/v1/models/inspect"]) {
        const r = await t.api.post(route, { ref });
        expect(r.status, `${route} ${ref}: ${r.text}`).toBe(403);
        expect(r.body.error.code).toBe("model_path_not_allowed");
        answers.add(r.body.error.message.replace(ref, "<path>"));
      }
    }
    expect([...answers]).toHaveLength(1);
    expect([...answers][0]).toMatch(/--models-dir, RBEE_MODELS_DIRS/);
  });

  it("with any_path (the queen, for the cluster's administrator) a file outside them is taken, but never in system directories", async () => {
    const ok = await t.api.post("/v1/models", { ref: STORIES_MODEL, any_path: true });
    expect(ok.status, ok.text).toBe(200);
    for (const ref of ["/etc/x.gguf", "/proc/self/x.gguf", "/etc/passwd"]) {
      const r = await t.api.post("/v1/models/inspect", { ref, any_path: true });
      expect(r.status, `${ref}: ${r.text}`).toBe(403);
    }
    const relative = await t.api.post("/v1/models", { ref: "../x.gguf", any_path: true });
    expect(relative.status, relative.text).toBe(400);
    const removed = await t.api.delete(`/v1/models/${ok.body.id}`);
    expect(removed.status, removed.text).toBe(200);
  });

  it("relative paths are refused (they would be resolved against the hive's working directory)", async () => {
    for (const ref of ["../../../../etc/passwd", "./x.gguf", "models/../x.gguf", "x.gguf", "~/x.gguf"]) {
      const r = await t.api.post("/v1/models", { ref });
      expect(r.status, `${ref}: ${r.text}`).toBe(400);
      expect(r.body.error.message).toMatch(/absolute path/);
    }
  });

  it("a GGUF in an allowed directory is registered; a link there that leads outside is refused alike", async () => {
    const inside = await copyStoriesModel(join(allowed, "tiny.gguf"));
    const ok = await t.api.post("/v1/models", { ref: inside });
    expect(ok.status, ok.text).toBe(200);
    const missing = await t.api.post("/v1/models", { ref: join(allowed, "none.gguf") });
    expect(missing.status, missing.text).toBe(404);

    const link = join(allowed, "escape.gguf");
    await symlink("/etc/passwd", link);
    const viaLink = await t.api.post("/v1/models", { ref: link });
    expect(viaLink.status, viaLink.text).toBe(403);
    expect(viaLink.body.error.code).toBe("model_path_not_allowed");
  });
});
