import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createAccount, type RunningCatalog, serveCatalog } from "@rbee/catalog-server";
import { writeEchoPackage } from "@rbee/testing";
import { generatePublisherKey, packDirectory, sha256Hex, signPackage } from "@rbee/worker-package";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// the dashboard's browser helpers: Debian's chromium through playwright-core, skipped (or, under CI, failed) without it
import {
  browserAvailable,
  openBrowser,
  seriousA11yViolations,
  type TestBrowser,
} from "../../dashboard/test/browser.js";

/** The marketplace page served by the catalog server, in headless Chromium, over a real catalog. */
describe.skipIf(!browserAvailable())("catalog server: the marketplace page in a real browser", () => {
  const root = mkdtempSync(join(tmpdir(), "rbee-marketplace-"));
  let catalog: RunningCatalog;
  let browser: TestBrowser;

  async function publish(token: string, manifest: Record<string, unknown>) {
    const key = generatePublisherKey();
    const { manifest: m, tarball } = await packDirectory(writeEchoPackage(join(root, String(manifest.id)), manifest));
    const sha256 = sha256Hex(tarball);
    const platform = m.platforms[0] as string;
    const res = await fetch(`${catalog.url}/workers`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({
        package: tarball.toString("base64"),
        platform,
        signature: signPackage(key.privateKeyPem, { id: m.id, version: m.version, platform, sha256 }),
        public_key: key.publicKey,
      }),
    });
    expect(res.status, await res.text()).toBe(201);
    return sha256;
  }

  let echoSha = "";
  beforeAll(async () => {
    catalog = await serveCatalog({ dataDir: join(root, "data"), port: 0 });
    echoSha = await publish(createAccount(catalog.store, "rbee-team", true), {});
    await publish(createAccount(catalog.store, "pixels", true), {
      id: "pixel-paint",
      description: "Paints <b>pictures</b> from prompts",
      category: "image",
      capabilities: ["image-generation"],
      device_kinds: ["cuda"],
      platforms: ["linux-x64"],
    });
    const reviewer = createAccount(catalog.store, "alice", false);
    const review = await fetch(`${catalog.url}/workers/echo-package/reviews`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${reviewer}` },
      body: JSON.stringify({ stars: 4, text: "Does what it says." }),
    });
    expect(review.status).toBe(201);
    browser = await openBrowser();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await catalog?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it("shows categories and packages, filters by category and search, and a package's details with its install command", async () => {
    const { page } = browser;
    await page.goto(catalog.url);
    await page.waitForSelector("body[data-ready=true]");
    expect(await page.locator("#list li").allTextContents()).toEqual([
      expect.stringContaining("echo-package"),
      expect.stringContaining("pixel-paint"),
    ]);
    expect(await page.locator("#categories button").allTextContents()).toEqual([
      "all",
      "llm (1)",
      "image (1)",
      "audio",
      "embeddings",
      "adapter",
    ]);
    // text from the catalog is text: the description's <b> is not markup
    expect(await page.locator("#list li[data-id=pixel-paint]").textContent()).toContain(
      "Paints <b>pictures</b> from prompts",
    );
    expect(await page.locator("#list b").count()).toBe(0);

    await page.getByRole("button", { name: "image (1)" }).click();
    await page.waitForFunction(() => (globalThis as any).document.querySelectorAll("#list li").length === 1);
    expect(await page.locator("#list li").textContent()).toContain("pixel-paint");
    await page.getByRole("button", { name: "all" }).click();
    await page.fill("#search", "word by word");
    await page.waitForFunction(() => {
      const items = (globalThis as any).document.querySelectorAll("#list li");
      return items.length === 1 && items[0].dataset.id === "echo-package";
    });
    await page.fill("#search", "nothing like this");
    await page.waitForFunction(() =>
      (globalThis as any).document.querySelector("#list")?.textContent.includes("No worker package matches"),
    );
    await page.fill("#search", "");
    await page.waitForFunction(() => (globalThis as any).document.querySelectorAll("#list li").length === 2);

    await page.click("#list li[data-id=echo-package]");
    await page.waitForSelector("#install-command");
    expect(await page.locator("#install-command").textContent()).toBe("rbee worker install echo-package");
    const detail = await page.locator("#detail").textContent();
    expect(detail).toContain("★★★★☆ 4.0");
    expect(detail).toContain("1 review(s) · published by rbee-team");
    expect(detail).toContain("Does what it says.");
    expect(detail).toContain(`sha256 ${echoSha}`);
    expect(detail).toMatch(/serves\s*text-generation, chat/);
    await browser.screenshot("marketplace");
    expect(await seriousA11yViolations(page)).toEqual([]);
    expect(browser.pageErrors).toEqual([]);
  });

  it("links a package to an rbee dashboard when given one (?dashboard=), keeping the install command; refuses other schemes", async () => {
    const { page } = browser;
    // no dashboard: the install command only
    expect(await page.locator("#install-on-cluster").count()).toBe(0);

    await page.goto(`${catalog.url}/?dashboard=${encodeURIComponent("http://127.0.0.1:7833/")}`);
    await page.waitForSelector("body[data-ready=true]");
    await page.click("#list li[data-id=pixel-paint]");
    const link = page.locator("#install-on-cluster");
    await link.waitFor();
    expect(await link.getAttribute("href")).toBe("http://127.0.0.1:7833/#/packages/pixel-paint");
    expect(await link.textContent()).toBe("Install on my cluster");
    expect(await page.locator("#detail").textContent()).toContain("in the rbee dashboard at 127.0.0.1:7833");
    expect(await page.locator("#install-command").textContent()).toBe("rbee worker install pixel-paint");
    expect(await seriousA11yViolations(page)).toEqual([]);

    await page.goto(`${catalog.url}/?dashboard=${encodeURIComponent("javascript:alert(1)")}`);
    await page.waitForSelector("body[data-ready=true]");
    await page.click("#list li[data-id=pixel-paint]");
    await page.waitForSelector("#install-command");
    expect(await page.locator("#install-on-cluster").count()).toBe(0);
    expect(browser.pageErrors).toEqual([]);
  });

  it("a catalog server given a dashboard URL that is not http(s) refuses to start, saying why", async () => {
    await expect(serveCatalog({ dataDir: join(root, "data2"), port: 0, dashboardUrl: "ftp://queen" })).rejects.toThrow(
      /the dashboard URL must be an http:\/\/ or https:\/\/ address such as http:\/\/127\.0\.0\.1:7833, got 'ftp:\/\/queen'/,
    );
  });
});
