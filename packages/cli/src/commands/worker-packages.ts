import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  type CatalogWorkerSummary,
  DeviceKind,
  describeConfigSchema,
  PackagePlatform,
  WorkerCategory,
} from "@rbee/contract";
import { packDirectory, publicKeyOf, sha256Hex, signPackage } from "@rbee/worker-package";
import { type Command, InvalidArgumentError, Option } from "commander";
import { z } from "zod";
import { catalogRequest, listWorkers, workerDetail } from "../catalog-client.js";
import { configOf, printJson } from "../context.js";
import { CliError, EXIT } from "../exit-codes.js";
import { workerTypeArg } from "../parse.js";
import { renderTable } from "../render/table.js";
import { runWithNarration } from "../run-job.js";

/** The private key `rbee worker publish` signs with unless told another: `<config dir>/publisher-key.pem`. */
export const PUBLISHER_KEY_FILE = "publisher-key.pem";

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** The catalogs a command searches: its --catalog flags, else the configured ones. */
function catalogsOf(cmd: Command, flags: { catalog?: string[] }): string[] {
  return flags.catalog?.map((u) => u.replace(/\/+$/, "")) ?? configOf(cmd).catalogUrls;
}

function catalogOption(): Option {
  return new Option(
    "--catalog <url>",
    "a worker catalog server (repeat for several; default: RBEE_CATALOG_URLS, `catalogs` in config.json, else http://127.0.0.1:8787)",
  ).argParser(collect);
}

function enumArg<T extends string>(schema: z.ZodType<T>, what: string) {
  return (value: string): T => {
    const r = schema.safeParse(value);
    if (!r.success) throw new InvalidArgumentError(`${r.error.issues[0]?.message ?? "invalid"} (${what}: '${value}')`);
    return r.data;
  };
}

function stars(rating: number | null, count: number): string {
  return rating === null ? "-" : `${rating.toFixed(1)} (${count})`;
}

/** `id` or `id@version`. */
function packageRef(value: string): { id: string; version?: string } {
  const [id = "", version] = value.split("@", 2);
  workerTypeArg(id);
  if (version !== undefined && !/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(version)) {
    throw new InvalidArgumentError(`expected <id>[@<version>] such as echo-package@1.0.0, got '${value}'`);
  }
  return version === undefined ? { id } : { id, version };
}

/**
 * `rbee worker available|info|install|uninstall|update|publish`: worker packages from catalog
 * servers, installed on the hives through the queen (docs/worker-catalog.md).
 */
export function addWorkerPackageCommands(worker: Command): void {
  worker
    .command("available")
    .description("list the worker packages the catalog servers offer")
    .option("--category <category>", "llm, image, audio, embeddings or adapter", enumArg(WorkerCategory, "category"))
    .option(
      "--platform <platform>",
      "only those that run on this platform (linux-x64, darwin-arm64, ...)",
      enumArg(PackagePlatform, "platform"),
    )
    .option(
      "--device <kind>",
      "only those that run on this kind of device (cpu, cuda, metal, vulkan, rocm)",
      enumArg(DeviceKind, "device kind"),
    )
    .option("-s, --search <text>", "words to find in the id or description")
    .addOption(catalogOption())
    .option("--json", "print the packages as JSON")
    .action(
      async (
        flags: {
          category?: string;
          platform?: string;
          device?: string;
          search?: string;
          catalog?: string[];
          json?: boolean;
        },
        cmd: Command,
      ) => {
        const rows: Array<CatalogWorkerSummary & { catalog: string }> = [];
        for (const catalog of catalogsOf(cmd, flags)) {
          for (let page = 1; ; page++) {
            const q = new URLSearchParams({ page: String(page), per_page: "100" });
            if (flags.category) q.set("category", flags.category);
            if (flags.platform) q.set("platform", flags.platform);
            if (flags.device) q.set("device_kind", flags.device);
            if (flags.search) q.set("q", flags.search);
            const list = await listWorkers(catalog, q);
            rows.push(...list.workers.map((w) => ({ ...w, catalog })));
            if (page * list.per_page >= list.total) break;
          }
        }
        if (flags.json) return printJson(rows);
        if (rows.length === 0) {
          process.stdout.write("no worker package matches\n");
          return;
        }
        process.stdout.write(
          `${renderTable(
            [
              { header: "ID" },
              { header: "VERSION" },
              { header: "CATEGORY" },
              { header: "RATING" },
              { header: "DEVICES" },
              { header: "DESCRIPTION" },
            ],
            rows.map((w) => [
              w.id,
              w.latest_version,
              w.category,
              stars(w.rating, w.review_count),
              w.device_kinds.join(", "),
              w.description,
            ]),
          )}\n`,
        );
      },
    );

  worker
    .command("info")
    .description("describe a worker package: versions, sha256 and signer per artifact, ratings, reviews")
    .argument("<id>", "the package's id", workerTypeArg)
    .addOption(catalogOption())
    .option("--json", "print the catalog's answer as JSON")
    .action(async (id: string, flags: { catalog?: string[]; json?: boolean }, cmd: Command) => {
      let lastError: unknown;
      for (const catalog of catalogsOf(cmd, flags)) {
        try {
          const w = await workerDetail(catalog, id);
          if (flags.json) return printJson({ ...w, catalog });
          const lines = [
            `${w.id} ${w.latest_version}: ${w.description}`,
            `catalog     ${catalog}`,
            `publisher   ${w.publisher}`,
            `category    ${w.category}`,
            `serves      ${w.capabilities.join(", ")}`,
            `devices     ${w.device_kinds.join(", ")}`,
            `platforms   ${w.platforms.join(", ")}`,
            `rating      ${stars(w.rating, w.review_count)}`,
            ...configLines(w.versions.find((v) => v.version === w.latest_version)?.manifest.config_schema),
            `install     ${w.install_command}`,
            "",
            renderTable(
              [
                { header: "VERSION" },
                { header: "PLATFORM" },
                { header: "SIZE", align: "right" },
                { header: "SHA256" },
                { header: "SIGNED BY" },
              ],
              w.versions.flatMap((v) =>
                v.artifacts.map((a) => [
                  v.version,
                  a.platform,
                  String(a.size_bytes),
                  a.sha256,
                  a.public_key ?? "unsigned",
                ]),
              ),
            ),
          ];
          for (const r of w.reviews)
            lines.push("", `${"★".repeat(r.stars)}${"☆".repeat(5 - r.stars)} ${r.user}: ${r.text}`);
          process.stdout.write(`${lines.join("\n")}\n`);
          return;
        } catch (err) {
          lastError = err;
        }
      }
      throw lastError;
    });

  worker
    .command("install")
    .description(
      "install a worker package on the hives through the queen (verified: sha256 and the publisher's signature)",
    )
    .argument("<id[@version]>", "the package, and a version (default: the newest)", packageRef)
    .option("--hive <id>", "only on this hive")
    .option("--all-hives", "on every connected hive (the default)")
    .option("--allow-unsigned", "install it even if it is unsigned or its signer is not trusted by the hives")
    .option("--auto-update", "keep it up to date within its major version (the queen checks its catalog)")
    .addOption(catalogOption())
    .option("--json", "print the job's result as JSON")
    .option("-q, --quiet", "no narration on stderr")
    .action(
      async (
        ref: { id: string; version?: string },
        flags: {
          hive?: string;
          allHives?: boolean;
          allowUnsigned?: boolean;
          autoUpdate?: boolean;
          catalog?: string[];
          json?: boolean;
          quiet?: boolean;
        },
        cmd: Command,
      ) => {
        if (flags.hive !== undefined && flags.allHives)
          throw new CliError("use --hive <id> or --all-hives, not both", EXIT.usage);
        const result = (await runWithNarration(
          cmd,
          {
            type: "install_worker_package",
            id: ref.id,
            ...(ref.version ? { version: ref.version } : {}),
            catalogs: catalogsOf(cmd, flags),
            ...(flags.hive ? { hive: flags.hive } : {}),
            ...(flags.allowUnsigned ? { allow_unsigned: true } : {}),
            ...(flags.autoUpdate ? { auto_update: true } : {}),
          },
          flags.quiet === true,
        )) as {
          id: string;
          version: string;
          hives: Array<{ hive_id: string; version: string; unchanged?: boolean; trust?: string }>;
        };
        if (flags.json) return printJson(result);
        for (const h of result.hives) {
          process.stdout.write(
            `${result.id}@${h.version} ${h.unchanged ? "already installed" : "installed"} on ${h.hive_id} (${h.trust === "verified" ? "signature verified" : "unsigned, allowed"})\n`,
          );
        }
      },
    );

  worker
    .command("uninstall")
    .description("remove an installed worker package from the hives (refused while its workers run)")
    .argument("<id>", "the package's id", workerTypeArg)
    .option("--hive <id>", "only from this hive")
    .option("--json", "print the job's result as JSON")
    .option("-q, --quiet", "no narration on stderr")
    .action(async (id: string, flags: { hive?: string; json?: boolean; quiet?: boolean }, cmd: Command) => {
      const result = (await runWithNarration(
        cmd,
        { type: "uninstall_worker_package", id, ...(flags.hive ? { hive: flags.hive } : {}) },
        flags.quiet === true,
      )) as { hives: Array<{ hive_id: string; version: string }> };
      if (flags.json) return printJson(result);
      for (const h of result.hives) process.stdout.write(`${id}@${h.version} removed from ${h.hive_id}\n`);
    });

  worker
    .command("update")
    .description(
      "update installed worker packages within their major version; workers are drained and restarted, a failed start rolls back",
    )
    .argument("[id]", "one package (default: all)", workerTypeArg)
    .option("--hive <id>", "only on this hive")
    .option("--major", "also to a new major version")
    .option("--json", "print the job's result as JSON")
    .option("-q, --quiet", "no narration on stderr")
    .action(
      async (
        id: string | undefined,
        flags: { hive?: string; major?: boolean; json?: boolean; quiet?: boolean },
        cmd: Command,
      ) => {
        const result = (await runWithNarration(
          cmd,
          {
            type: "update_worker_package",
            ...(id ? { id } : {}),
            ...(flags.hive ? { hive: flags.hive } : {}),
            ...(flags.major ? { major: true } : {}),
          },
          flags.quiet === true,
        )) as { updates: Array<{ hive_id: string; id: string; from: string; to?: string; outcome: string }> };
        if (flags.json) return printJson(result);
        for (const u of result.updates) {
          process.stdout.write(
            `${u.id} on ${u.hive_id}: ${u.outcome === "updated" ? `${u.from} -> ${u.to}` : `${u.from}, ${u.outcome}`}\n`,
          );
        }
      },
    );

  worker
    .command("publish")
    .description(
      "pack a directory with an rbee-worker.json, sign it with your publisher key, and publish it to a catalog",
    )
    .argument("<dir>", "the package's directory")
    .requiredOption(
      "--token <token>",
      "your publisher token on that catalog (RBEE_CATALOG_TOKEN)",
      process.env.RBEE_CATALOG_TOKEN,
    )
    .option(
      "--key <file>",
      `the ed25519 private key (PEM) to sign with (default: ${PUBLISHER_KEY_FILE} in the rbee config dir; make one with \`rbee catalog keygen\`)`,
    )
    .option(
      "--platform <platform>",
      "the platform this build is for: any (default) or linux-x64, darwin-arm64, ...",
      enumArg(PackagePlatform, "platform"),
      "any",
    )
    .option("--catalog <url>", "the catalog server to publish to (default: the first configured)")
    .option("--json", "print the catalog's answer as JSON")
    .action(
      async (
        dir: string,
        flags: { token: string; key?: string; platform: string; catalog?: string; json?: boolean },
        cmd: Command,
      ) => {
        const config = configOf(cmd);
        const keyFile = flags.key ?? join(config.configDir, PUBLISHER_KEY_FILE);
        let pem: string;
        try {
          pem = readFileSync(keyFile, "utf8");
        } catch {
          throw new CliError(
            `no publisher key at ${keyFile}; make one with \`rbee catalog keygen\`, or name yours with --key`,
            EXIT.usage,
          );
        }
        const { manifest, tarball } = await packDirectory(dir).catch((err: Error) => {
          throw new CliError(err.message, EXIT.usage);
        });
        const sha256 = sha256Hex(tarball);
        const signature = signPackage(pem, {
          id: manifest.id,
          version: manifest.version,
          platform: flags.platform,
          sha256,
        });
        const catalog = (flags.catalog ?? config.catalogUrls[0] ?? "").replace(/\/+$/, "");
        const answer = await catalogRequest(
          catalog,
          "/workers",
          z.looseObject({ id: z.string(), version: z.string() }),
          {
            method: "POST",
            token: flags.token,
            body: {
              package: tarball.toString("base64"),
              platform: flags.platform,
              signature,
              public_key: publicKeyOf(pem),
            },
          },
        );
        if (flags.json) return printJson(answer);
        process.stdout.write(
          `published ${manifest.id}@${manifest.version} (${flags.platform}, ${tarball.length} bytes, sha256 ${sha256}) to ${catalog}\n`,
        );
      },
    );
}

/** `rbee worker info`'s lines for the settings a package's workers take (`--config key=value`). */
function configLines(schema: Record<string, unknown> | undefined): string[] {
  if (schema === undefined) return [];
  const settings = describeConfigSchema(schema);
  if (settings.length === 0) return ["config      none"];
  return settings.map((s, i) => `${i === 0 ? "config      " : "            "}${s}`);
}
