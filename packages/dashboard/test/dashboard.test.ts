import { join } from "node:path";
import { type Hive, startHive } from "@rbee/hive";
import { type Queen, startQueen } from "@rbee/queen";
import { freePort } from "@rbee/server-kit";
import {
  type HubServer,
  quietLog,
  requireStoriesModel,
  STORIES_MODEL,
  startHubServer,
  tempRbeeDirs,
  waitFor,
} from "@rbee/testing";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { browserAvailable, openBrowser, seriousA11yViolations, type TestBrowser } from "./browser.js";

const HEARTBEAT_MS = 300;
const HF_REF = "ggml-org/models:tinyllamas/stories260K.gguf";

// The dashboard in headless chromium against a real queen and a real hive on loopback, with real
// llm workers on stories260K; models come from the Hugging Face test hub (a fixture that replays the
// Hub's protocol, packages/testing/src/hub-server), which the hive reaches through HF_ENDPOINT.
describe.skipIf(!browserAvailable())("the web dashboard in a real browser (queen, hive, stories260K workers)", () => {
  const dirs = tempRbeeDirs("dashboard");
  let hub: HubServer;
  let queen: Queen;
  let queenPort: number;
  let hive: Hive;
  let browser: TestBrowser;
  let page: Page;
  let modelId = "";

  const startTheQueen = async () =>
    startQueen({
      log: quietLog("queen"),
      port: queenPort,
      configDir: dirs.configDir,
      cacheDir: dirs.cacheDir,
      heartbeatIntervalMs: HEARTBEAT_MS,
      sweepIntervalMs: 200,
    });

  const view = async (name: string) => {
    await page.getByRole("link", { name, exact: true }).click();
    await page.getByRole("heading", { level: 1 }).first().waitFor();
  };

  const expectAccessible = async (what: string) => {
    const violations = await seriousA11yViolations(page);
    expect(violations, `${what}: ${JSON.stringify(violations, null, 1)}`).toEqual([]);
  };

  beforeAll(async () => {
    requireStoriesModel();
    hub = await startHubServer({
      repos: { "ggml-org/models": { files: { "tinyllamas/stories260K.gguf": { path: STORIES_MODEL } } } },
    });
    queenPort = await freePort();
    queen = await startTheQueen();
    hive = await startHive({
      log: quietLog("hive"),
      port: 0,
      queenUrl: queen.url,
      hiveId: "dash-hive",
      configDir: dirs.configDir,
      cacheDir: dirs.cacheDir,
      heartbeatIntervalMs: HEARTBEAT_MS,
      workerOrphanTimeoutMs: 5_000,
      workerPortStart: 20_000 + Math.floor(Math.random() * 30_000),
      env: { ...process.env, HF_ENDPOINT: hub.url, HF_TOKEN: "", HF_HOME: join(dirs.root, "no-hf-home") },
    });
    await waitFor(() => (queen.registry.hives.get("dash-hive")?.state === "live" ? true : undefined));
    browser = await openBrowser();
    page = browser.page;
  }, 90_000);

  afterAll(async () => {
    if (browser?.pageErrors.length) console.log(`page errors:\n${browser.pageErrors.join("\n")}`);
    await browser?.close();
    await hive?.close();
    await queen?.close();
    await hub?.close();
  });

  it("serves the page at / with caching headers, compressed, and the JSON line to API clients", async () => {
    const html = await fetch(`${queen.url}/`, { headers: { accept: "text/html" } });
    expect(html.headers.get("content-type")).toMatch(/text\/html/);
    expect(html.headers.get("cache-control")).toBe("no-cache");
    expect(html.headers.get("content-security-policy")).toMatch(/script-src 'self'/);
    const text = await html.text();
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(text)?.[1];
    expect(script).toBeTruthy();
    const asset = await fetch(`${queen.url}${script}`, { headers: { "accept-encoding": "br, gzip" } });
    expect(asset.status).toBe(200);
    expect(asset.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(asset.headers.get("content-encoding")).toBe("br");
    const etag = asset.headers.get("etag") ?? "";
    const again = await fetch(`${queen.url}${script}`, { headers: { "if-none-match": etag } });
    expect(again.status).toBe(304);
    const json = await fetch(`${queen.url}/`);
    expect(await json.json()).toMatchObject({ name: "rbee queen" });
    expect((await fetch(`${queen.url}/assets/nothing.js`)).status).toBe(404);
  });

  it("Cluster: the hive, its devices and memory, live", async () => {
    await page.goto(`${queen.url}/`);
    await page.locator('[data-connection="live"]').waitFor();
    await page.locator('[data-hive-id="dash-hive"]').waitFor();
    await expect.poll(() => page.locator('[data-hive-id="dash-hive"]').textContent()).toMatch(/live/);
    expect(await page.locator('[data-hive-id="dash-hive"] .membar').count()).toBeGreaterThan(0);
    await browser.screenshot("cluster-empty");
    await expectAccessible("cluster view");
  });

  it("Models: a Hugging Face model is checked for fit, downloaded with progress, cancelled, resumed", async () => {
    await view("Models");
    await page.getByLabel("Hugging Face reference").fill(HF_REF);
    await page.getByRole("button", { name: "Check fit" }).click();
    const fit = page.getByTestId("fit-check");
    await fit.waitFor({ timeout: 30_000 });
    expect(await fit.textContent()).toMatch(/llama/);
    expect(await fit.textContent()).toMatch(/fits/);
    await browser.screenshot("models-fit-check");
    // slow the hub down so that progress shows, and the download can be stopped halfway
    hub.faults.bytesPerSecond = 150_000;
    await page.getByRole("button", { name: "Download", exact: true }).click();
    const log = page.getByTestId("download-log");
    await expect.poll(() => log.textContent(), { timeout: 20_000 }).toMatch(/[1-9]\d*%/);
    await browser.screenshot("models-download-progress");
    await page.getByRole("button", { name: "Cancel download" }).click();
    await page.getByRole("button", { name: "Resume download" }).waitFor({ timeout: 15_000 });
    expect(await log.textContent()).toMatch(/cancelled/);
    hub.faults.bytesPerSecond = undefined;
    await page.getByRole("button", { name: "Resume download" }).click();
    await expect.poll(() => log.textContent(), { timeout: 30_000 }).toMatch(/is available on hive dash-hive/);
    modelId = /([a-z0-9._-]+) is available on hive/.exec((await log.textContent()) ?? "")?.[1] ?? "";
    expect(modelId).not.toBe("");
    await page.locator(`[data-model-id="${modelId}"]`).waitFor({ timeout: 15_000 });
    await browser.screenshot("models");
    await expectAccessible("models view");
  }, 90_000);

  it("Workers + Cluster: a spawned worker appears live, its log tails; SIGKILLed, the view shows the restart", async () => {
    await view("Workers");
    await page.getByLabel("Model").fill(modelId);
    await page.getByLabel("Hive").selectOption("dash-hive");
    await page.getByRole("button", { name: "Spawn" }).click();
    const spawnLog = page.getByTestId("spawn-log");
    await expect.poll(() => spawnLog.textContent(), { timeout: 60_000 }).toMatch(/done/);
    expect(await spawnLog.textContent()).toMatch(/dash-hive/);
    await browser.screenshot("workers-spawned");
    const worker = queen.snapshot().workers[0];
    expect(worker?.pid).toBeTruthy();
    const id = worker?.worker_id ?? "";
    // its log, through the queen
    await page.locator(`li[data-worker-id="${id}"]`).getByRole("button", { name: "Log" }).click();
    await expect.poll(() => page.getByRole("log").textContent(), { timeout: 15_000 }).toMatch(/\S/);
    await browser.screenshot("workers-log");
    await expectAccessible("workers view");

    // the cluster view, without a reload
    await view("Cluster");
    const row = page.locator(`tr[data-worker-id="${id}"]`);
    await expect.poll(() => row.getAttribute("data-status"), { timeout: 15_000 }).toBe("Ready");
    await browser.screenshot("cluster");
    process.kill(worker?.pid as number, "SIGKILL");
    await expect.poll(() => row.textContent(), { timeout: 30_000 }).toMatch(/SIGKILL/);
    // restarted by its hive: Ready again, one restart counted
    await expect.poll(() => row.getAttribute("data-status"), { timeout: 30_000 }).toBe("Ready");
    await expect.poll(() => row.locator('td[data-label="restarts"]').textContent(), { timeout: 15_000 }).toBe("1");
    await browser.screenshot("cluster-after-kill");
  }, 120_000);

  it("Playground: a chat streams real stories260K tokens and names the worker", async () => {
    await view("Playground");
    await page.getByLabel("Model", { exact: true }).fill(modelId);
    await page.getByLabel("Temperature").fill("0");
    await page.getByLabel("Max tokens").fill("60");
    await page.getByLabel("Message").fill("Once upon a time");
    await page.getByRole("button", { name: "Send" }).click();
    const log = page.getByTestId("chat-log");
    await expect.poll(() => log.textContent(), { timeout: 30_000 }).toMatch(/tok\/s/);
    const text = (await log.textContent()) ?? "";
    expect(text).toMatch(/\d+ prompt \+ \d+ generated tokens/);
    expect(text).toMatch(/worker [a-z0-9-]+/);
    expect(text.length).toBeGreaterThan("Once upon a time".length + 40);
    // the comfyui type (an adapter that needs no binary here) is an image worker type every hive has
    expect(await page.locator('section[aria-labelledby="images-title"]').textContent()).toMatch(
      /Worker type comfyui generates images on dash-hive; use POST \/v1\/images\/generations/,
    );
    await browser.screenshot("playground");
    await expectAccessible("playground");

    // Stop ends a long reply early (the job is cancelled, the worker stops generating)
    await page.getByRole("button", { name: "Clear" }).click();
    await page.getByLabel("Max tokens").fill("1500");
    await page.getByLabel("Message").fill("Once upon a time");
    await page.getByRole("button", { name: "Send" }).click();
    await expect.poll(() => page.getByTestId("streaming-reply").textContent(), { timeout: 30_000 }).toMatch(/\w{3}/);
    await page.getByRole("button", { name: "Stop" }).click();
    await expect.poll(() => log.textContent(), { timeout: 15_000 }).toMatch(/stopped after \d+ tokens/);

    // the same chat through the OpenAI route
    await page.getByRole("button", { name: "Clear" }).click();
    await page.getByLabel("Max tokens").fill("40");
    await page.getByRole("radio", { name: /chat\/completions/ }).check();
    await page.getByLabel("Message").fill("Once upon a time");
    await page.getByRole("button", { name: "Send" }).click();
    await expect.poll(() => log.textContent(), { timeout: 30_000 }).toMatch(/via \/v1\/chat\/completions/);
    expect(await log.textContent()).toMatch(/\d+ prompt \+ 40 generated tokens/);
  }, 90_000);

  it("Jobs: the jobs run so far, with their narration", async () => {
    await view("Jobs");
    const first = page.locator("li.job").first();
    await first.waitFor();
    expect(await page.locator("li.job").count()).toBeGreaterThanOrEqual(4);
    await page.locator("li.job", { hasText: "download" }).first().getByRole("button").first().click();
    await expect.poll(() => page.locator(".job-detail").first().textContent(), { timeout: 10_000 }).toMatch(/hive/);
    await browser.screenshot("jobs");
    await expectAccessible("jobs view");
  });

  it("an error appears as the API wrote it: removing a model a worker serves is refused", async () => {
    await view("Models");
    const row = page.locator(`tr[data-model-id="${modelId}"]`);
    page.once("dialog", (d) => void d.accept());
    await row.getByRole("button", { name: `Remove ${modelId}` }).click();
    await expect.poll(() => row.getByRole("alert").textContent(), { timeout: 15_000 }).toMatch(/in use by worker/);
    await browser.screenshot("models-remove-refused");
  });

  it("works at phone width (in the dark color scheme)", async () => {
    const phone = await openBrowser({ width: 390, height: 844 }, "dark");
    try {
      await phone.page.goto(`${queen.url}/#/cluster`);
      await phone.page.locator('[data-connection="live"]').waitFor();
      await phone.page.locator("tr[data-worker-id]").first().waitFor();
      const overflow = await phone.page.evaluate(() => {
        const g = globalThis as any;
        return g.document.documentElement.scrollWidth - g.innerWidth;
      });
      expect(overflow).toBeLessThanOrEqual(0);
      await phone.screenshot("phone-cluster-dark");
      const violations = await seriousA11yViolations(phone.page);
      expect(violations, JSON.stringify(violations, null, 1)).toEqual([]);
    } finally {
      await phone.close();
    }
  });

  it("Keys: a key created from the page is shown once, and from then on the page asks for it", async () => {
    await view("Keys");
    await page.getByLabel("Name").fill("browser-test");
    await page.getByRole("button", { name: "Create key" }).click();
    const secret = (await page.getByTestId("secret").textContent())?.trim() ?? "";
    expect(secret).toMatch(/^rbee_sk_/);
    await browser.screenshot("keys-created");
    // a fresh load: the API wants a key now, and this tab has none
    await page.reload();
    await page.getByRole("heading", { name: "This queen wants an API key" }).waitFor();
    await browser.screenshot("key-prompt");
    await expectAccessible("key prompt");
    await page.getByRole("textbox", { name: "API key" }).fill("rbee_sk_wrong");
    await page.getByRole("button", { name: "Use this key" }).click();
    await page.getByText("The key this tab kept was refused").waitFor();
    await page.getByRole("textbox", { name: "API key" }).fill(secret);
    await page.getByRole("button", { name: "Use this key" }).click();
    await page.locator('[data-connection="live"]').waitFor();
    await page.locator("tr[data-key-id]").first().waitFor(); // the page it was on, now answered
    await view("Cluster");
    await page.locator('[data-hive-id="dash-hive"]').waitFor();
    // the list shows the key, never its secret
    await view("Keys");
    await page.locator("tr[data-key-id]").first().waitFor();
    expect(await page.content()).not.toContain(secret);
    await browser.screenshot("keys");
    await expectAccessible("keys view");
  });

  it("Workers: Drain lets the request in flight finish, then stops the worker", async () => {
    const id = queen.snapshot().workers[0]?.worker_id ?? "";
    await view("Workers");
    const card = page.locator(`li[data-worker-id="${id}"]`);
    const drain = card.getByRole("button", { name: "Drain" });
    await drain.waitFor();
    // a long completion, in flight while the worker drains
    const inFlight = fetch(`${queen.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${queen.clusterToken}` },
      body: JSON.stringify({ model: modelId, prompt: "Once upon a time", max_tokens: 2000, temperature: 0 }),
    }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));
    await waitFor(() => (queen.registry.workers.get(id)?.inFlight ? true : undefined), 15_000);
    await drain.click();
    await browser.screenshot("workers-draining");
    const done = await inFlight;
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    expect(done.body.usage.completion_tokens).toBeGreaterThan(0);
    // the drain job waited for it, then stopped the worker
    const jobs = await fetch(`${queen.url}/v1/jobs`, { headers: { authorization: `Bearer ${queen.clusterToken}` } });
    const stopJob = ((await jobs.json()) as any).jobs.find(
      (j: any) => j.operation.type === "stop_worker" && j.operation.drain === true,
    );
    expect(stopJob).toBeDefined();
    const events = await (
      await fetch(`${queen.url}/v1/jobs/${stopJob.job_id}/stream`, {
        headers: { authorization: `Bearer ${queen.clusterToken}` },
      })
    ).text();
    expect(events).toMatch(/draining .*: waiting for its 1 request\(s\) in flight/);
    expect(events).toMatch(/event: done/);
    await card.waitFor({ state: "detached", timeout: 20_000 });
    await view("Cluster");
    await page.locator(`tr[data-worker-id="${id}"]`).waitFor({ state: "detached", timeout: 10_000 });
  }, 90_000);

  it("a queen that goes away shows as disconnected, and the page reconnects by itself", async () => {
    await view("Cluster");
    await page.locator('[data-connection="live"]').waitFor();
    await queen.close();
    await page.locator('[data-connection="disconnected"]').waitFor({ timeout: 15_000 });
    await page.getByText("Disconnected from the queen").waitFor();
    await browser.screenshot("disconnected");
    queen = await startTheQueen();
    await page.locator('[data-connection="live"]').waitFor({ timeout: 20_000 });
    // the hive heartbeats to the new queen, and the page shows it again
    await page.locator('[data-hive-id="dash-hive"]').waitFor({ timeout: 15_000 });
  }, 60_000);
});
