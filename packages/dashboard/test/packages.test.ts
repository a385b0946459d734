import { rmSync } from "node:fs";
import { join } from "node:path";
import { createAccount, type RunningCatalog, serveCatalog } from "@rbee/catalog-server";
import { type Hive, startHive } from "@rbee/hive";
import { type Queen, startQueen } from "@rbee/queen";
import { freePort } from "@rbee/server-kit";
import { postJson, quietLog, tempRbeeDirs, waitFor, writeEchoPackage } from "@rbee/testing";
import {
  addTrustedKey,
  generatePublisherKey,
  type PublisherKeyPair,
  packDirectory,
  sha256Hex,
  signPackage,
} from "@rbee/worker-package";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { browserAvailable, openBrowser, seriousA11yViolations, type TestBrowser } from "./browser.js";

const HEARTBEAT_MS = 300;

// The dashboard's Packages view in headless chromium: a real catalog server on loopback (its own
// SQLite file) holding the echo worker packaged and signed, a second catalog URL where nothing
// listens, a real queen whose catalogs are those two, and a real hive that trusts the publisher's
// key. Packages are browsed, installed, updated and removed through the page, as queen jobs.
describe.skipIf(!browserAvailable())(
  "the dashboard's worker packages view in a real browser (catalog server, queen, hive)",
  () => {
    const dirs = tempRbeeDirs("dash-packages");
    const team = generatePublisherKey();
    const stranger = generatePublisherKey();
    let catalog: RunningCatalog;
    let deadCatalog = "";
    let queen: Queen;
    let hive: Hive;
    let browser: TestBrowser;
    let page: Page;

    async function publish(token: string, key: PublisherKeyPair, manifest: Record<string, unknown>): Promise<void> {
      const dir = writeEchoPackage(join(dirs.root, `pkg-${Math.random().toString(36).slice(2)}`), manifest);
      const { manifest: m, tarball } = await packDirectory(dir);
      const sha256 = sha256Hex(tarball);
      const res = await postJson(
        `${catalog.url}/workers`,
        {
          package: tarball.toString("base64"),
          platform: "any",
          signature: signPackage(key.privateKeyPem, { id: m.id, version: m.version, platform: "any", sha256 }),
          public_key: key.publicKey,
        },
        { token },
      );
      if (res.status !== 201) throw new Error(`publish ${m.id}@${m.version}: ${res.status} ${res.text}`);
    }

    const view = async (name: string) => {
      await page.getByRole("link", { name, exact: true }).click();
      await page.getByRole("heading", { level: 1 }).first().waitFor();
    };
    const rows = () =>
      page
        .locator('[data-testid="packages"] tbody tr')
        .evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-package-id")));
    const jobText = () => page.getByTestId("package-job").textContent();
    const workerTypeOption = (id: string) => page.locator(`select[name="worker-type"] option[value="${id}"]`);
    const expectAccessible = async (what: string) => {
      const violations = await seriousA11yViolations(page);
      expect(violations, `${what}: ${JSON.stringify(violations, null, 1)}`).toEqual([]);
    };

    beforeAll(async () => {
      const queenPort = await freePort();
      catalog = await serveCatalog({
        dataDir: join(dirs.root, "catalog"),
        port: 0,
        dashboardUrl: `http://127.0.0.1:${queenPort}`,
      });
      const teamToken = createAccount(catalog.store, "rbee-team", true);
      const strangerToken = createAccount(catalog.store, "stranger", true);
      await publish(teamToken, team, { version: "1.0.0" });
      await publish(teamToken, team, { version: "1.1.0", description: "Echo worker, newer" });
      await publish(teamToken, team, {
        id: "echo-painter",
        version: "0.3.0",
        category: "image",
        description: "Paints nothing: an echo worker filed under image",
        capabilities: ["image-generation"],
      });
      await publish(strangerToken, stranger, { id: "stranger-echo", description: "An echo worker by someone unknown" });
      const review = await postJson(
        `${catalog.url}/workers/echo-package/reviews`,
        { stars: 5, text: "Echoes every word." },
        { token: createAccount(catalog.store, "alice", false) },
      );
      expect(review.status).toBe(201);
      deadCatalog = `http://127.0.0.1:${await freePort()}`;
      // the hive trusts the team's key, not the stranger's
      await addTrustedKey(dirs.configDir, { name: "rbee-team", public_key: team.publicKey });
      queen = await startQueen({
        log: quietLog("queen"),
        port: queenPort,
        configDir: dirs.configDir,
        cacheDir: dirs.cacheDir,
        heartbeatIntervalMs: HEARTBEAT_MS,
        sweepIntervalMs: 200,
        catalogUrls: [catalog.url, deadCatalog],
        packageUpdateIntervalMs: 0,
      });
      hive = await startHive({
        log: quietLog("hive"),
        port: 0,
        queenUrl: queen.url,
        hiveId: "dash-hive",
        configDir: dirs.configDir,
        cacheDir: dirs.cacheDir,
        heartbeatIntervalMs: HEARTBEAT_MS,
        workerPortStart: 20_000 + Math.floor(Math.random() * 30_000),
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
      await catalog?.close();
      rmSync(dirs.root, { recursive: true, force: true });
    });

    it("browses the catalogs through the queen: categories, search, and the catalog that is down named", async () => {
      await page.goto(`${queen.url}/#/packages`);
      await page.locator('[data-connection="live"]').waitFor();
      await expect.poll(rows).toEqual(["echo-package", "echo-painter", "stranger-echo"]);
      const problems = page.getByTestId("catalog-problems");
      expect(await problems.textContent()).toContain(`Catalog ${deadCatalog} did not answer`);
      expect(await problems.textContent()).toMatch(/connection refused/);
      const echo = await page.locator('tr[data-package-id="echo-package"]').textContent();
      expect(echo).toContain("1.1.0");
      expect(echo).toContain("5.0 (1)");
      expect(echo).toContain("not installed");

      await page.getByRole("button", { name: "image", exact: true }).click();
      await expect.poll(rows).toEqual(["echo-painter"]);
      await page.getByRole("button", { name: "all", exact: true }).click();
      await expect.poll(rows).toHaveLength(3);
      await page.getByLabel("Search packages").fill("unknown");
      await expect.poll(rows).toEqual(["stranger-echo"]);
      await page.getByLabel("Search packages").fill("nothing like this");
      await expect.poll(() => page.locator("main").textContent()).toContain("No worker package matches.");
      await page.getByLabel("Search packages").fill("");
      await expect.poll(rows).toHaveLength(3);
      await browser.screenshot("packages");
      await expectAccessible("packages view");
    });

    it("installs a package from its details as a queen job, shows the result, and the type appears in Workers; updates it; uninstalls it", async () => {
      await page.goto(`${queen.url}/#/packages`);
      await page.getByRole("link", { name: "echo-package", exact: true }).click();
      const detail = page.locator('section[data-package-id="echo-package"]');
      await expect
        .poll(() => detail.getByTestId("versions").textContent())
        .toMatch(/1\.0\.0.*1\.1\.0|1\.1\.0.*1\.0\.0/);
      expect(await detail.textContent()).toContain("Echoes every word.");
      expect(await detail.textContent()).toContain("On no hive yet.");
      expect(await workerTypeOption("echo-package").count()).toBe(0);

      await detail.locator('select[name="version"]').selectOption("1.0.0");
      await detail.getByRole("button", { name: "Install", exact: true }).click();
      await expect
        .poll(jobText, { timeout: 60_000 })
        .toMatch(/echo-package@1\.0\.0 installed on dash-hive \(signature verified\)/);
      // the job's narration, as it came
      expect(await jobText()).toMatch(/installing echo-package@1\.0\.0 from http:\/\/127\.0\.0\.1:\d+ on dash-hive/);
      const installed = detail.locator('[data-testid="installed"] tr[data-hive-id="dash-hive"]');
      await expect.poll(() => installed.textContent()).toMatch(/1\.0\.0.*signature verified.*Available.*1\.1\.0/);
      await expect
        .poll(() => page.locator('tr[data-package-id="echo-package"]').textContent())
        .toMatch(/dash-hive 1\.0\.0\s*update 1\.1\.0/);
      await browser.screenshot("packages-installed");
      await expectAccessible("a package's details, installed");

      // where the dashboard lists worker types
      await view("Workers");
      await workerTypeOption("echo-package").waitFor({ state: "attached" });
      expect(await workerTypeOption("echo-package").textContent()).toMatch(/echo-package — text-generation/);
      expect(await workerTypeOption("echo-package").isDisabled()).toBe(false);

      await page.goto(`${queen.url}/#/packages/echo-package`);
      await page.getByRole("button", { name: "Update to 1.1.0 on dash-hive" }).click();
      await expect.poll(jobText, { timeout: 60_000 }).toMatch(/echo-package on dash-hive: 1\.0\.0 → 1\.1\.0/);
      await expect.poll(() => installed.textContent()).toMatch(/1\.1\.0.*up to date/);

      page.once("dialog", (d) => void d.accept());
      await page.getByRole("button", { name: "Uninstall echo-package from dash-hive" }).click();
      await expect.poll(jobText, { timeout: 30_000 }).toMatch(/echo-package@1\.1\.0 removed from dash-hive/);
      await expect.poll(() => detail.textContent()).toContain("On no hive yet.");
      await view("Workers");
      await page.locator('select[name="worker-type"] option').first().waitFor({ state: "attached" });
      await expect.poll(() => page.locator('select[name="worker-type"] option').count()).toBeGreaterThan(1);
      expect(await workerTypeOption("echo-package").count()).toBe(0);
    }, 180_000);

    it("a package signed by a key the hive does not trust is refused with the hive's reason; Allow unsigned warns, then installs it", async () => {
      await page.goto(`${queen.url}/#/packages/stranger-echo`);
      const detail = page.locator('section[data-package-id="stranger-echo"]');
      await detail.getByRole("button", { name: "Install", exact: true }).click();
      await expect
        .poll(() => detail.getByTestId("package-job").getByRole("alert").first().textContent(), { timeout: 60_000 })
        .toMatch(/trust check failed: .*which this hive does not trust/);
      expect(await detail.textContent()).toContain("On no hive yet.");

      expect(await page.getByTestId("unsigned-warning").count()).toBe(0);
      await detail.getByLabel("Allow unsigned").check();
      const warning = page.getByTestId("unsigned-warning");
      expect(await warning.textContent()).toMatch(
        /Unverified install\..*nothing then shows that its code is what its publisher released/,
      );
      await detail.getByRole("button", { name: "Install unverified" }).click();
      await expect
        .poll(jobText, { timeout: 60_000 })
        .toMatch(/stranger-echo@1\.0\.0 installed on dash-hive \(unsigned, allowed\)/);
      await expect
        .poll(() => detail.locator('[data-testid="installed"] tr[data-hive-id="dash-hive"]').textContent())
        .toMatch(/1\.0\.0.*unsigned, allowed/);
      await browser.screenshot("packages-unsigned");
      await expectAccessible("the unverified-install warning");
    }, 120_000);

    it("works at phone width, in the dark color scheme: no sideways scrolling, no serious accessibility violation", async () => {
      const phone = await openBrowser({ width: 390, height: 844 }, "dark");
      try {
        await phone.page.goto(`${queen.url}/#/packages/stranger-echo`);
        await phone.page.locator('[data-connection="live"]').waitFor();
        const detail = phone.page.locator('section[data-package-id="stranger-echo"]');
        await detail.locator('[data-testid="installed"] tr[data-hive-id="dash-hive"]').waitFor();
        await detail.getByLabel("Allow unsigned").check();
        await phone.page.getByTestId("unsigned-warning").waitFor();
        const overflow = await phone.page.evaluate(() => {
          const g = globalThis as any;
          return g.document.documentElement.scrollWidth - g.innerWidth;
        });
        expect(overflow).toBeLessThanOrEqual(0);
        await phone.screenshot("phone-packages-dark");
        const violations = await seriousA11yViolations(phone.page);
        expect(violations, JSON.stringify(violations, null, 1)).toEqual([]);
      } finally {
        await phone.close();
      }
    });

    it("the marketplace's Install on my cluster opens the dashboard's view of that package", async () => {
      await page.goto(catalog.url);
      await page.waitForSelector("body[data-ready=true]");
      await page.click("#list li[data-id=echo-painter]");
      await page.click("#install-on-cluster");
      await page.waitForURL(`${queen.url}/#/packages/echo-painter`);
      const detail = page.locator('section[data-package-id="echo-painter"]');
      await expect.poll(() => detail.textContent()).toContain("Paints nothing: an echo worker filed under image");
      expect(await detail.getByRole("button", { name: "Install", exact: true }).isEnabled()).toBe(true);
      expect(browser.pageErrors).toEqual([]);
    });
  },
);
