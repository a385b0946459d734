import { type Queen, startQueen } from "@rbee/queen";
import { getJson, postJson, quietLog, tempRbeeDirs, waitFor } from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * Issue 15, defect 8: 600 jobs with 900 KB prompts took a queen from 67 MB to 1.15 GB, as finished
 * jobs kept their requests for 15 minutes. A finished job keeps no prompt, and finished jobs
 * together hold at most a capped amount of memory.
 */
describe("finished jobs keep no prompts, and their memory is capped (issue 15: defect 8)", () => {
  let queen: Queen;
  const CAP = 8 * 1024;

  beforeAll(async () => {
    const dirs = tempRbeeDirs("job-memory");
    queen = await startQueen({
      port: 0,
      configDir: dirs.configDir,
      cacheDir: dirs.cacheDir,
      log: quietLog("queen"),
      jobsMaxBytes: CAP,
    });
  });
  afterAll(async () => {
    await queen?.close();
  });

  it("40 infer jobs with 900 KB prompts: each forgets its prompt when it ends; the oldest go when the cap is reached", async () => {
    const prompt = "Once upon a time ".repeat(53_000).slice(0, 900_000);
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) {
      // no hive: each job ends at once with an error, the way a real job ends after its answer
      const r = await postJson(`${queen.url}/v1/jobs`, {
        operation: { type: "infer", model: "stories260k", prompt, messages: undefined, max_tokens: 4 },
      });
      expect(r.status, r.text).toBe(202);
      ids.push(r.body.job_id);
    }
    const last = ids.at(-1) as string;
    const shown = await waitFor(async () => {
      const r = await getJson(`${queen.url}/v1/jobs/${last}`);
      return r.body.status === "running" ? undefined : r.body;
    }, 20_000);
    expect(shown.operation).toEqual({ type: "infer", model: "stories260k", max_tokens: 4, prompt_chars: 900_000 });
    expect(JSON.stringify(shown).length).toBeLessThan(1000);

    // nothing kept holds a prompt, and the finished jobs kept hold no more than the cap
    expect(queen.jobs.finishedBytes).toBeLessThanOrEqual(CAP);
    expect(queen.jobs.size).toBeLessThan(40);
    const first = await getJson(`${queen.url}/v1/jobs/${ids[0]}`);
    expect(first.status).toBe(404);
    expect(first.body.error.message).toMatch(/fewer when many finished jobs hold more than/);
  });
});
