import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_PORTS } from "@rbee/contract";
import {
  addTrustedKey,
  decodePublicKey,
  generatePublisherKey,
  keyFingerprint,
  readTrustedKeys,
} from "@rbee/worker-package";
import { Command, InvalidArgumentError } from "commander";
import { configOf, printJson } from "../context.js";
import { CliError, EXIT } from "../exit-codes.js";
import { intArg } from "../parse.js";
import { renderTable } from "../render/table.js";
import { PUBLISHER_KEY_FILE } from "./worker-packages.js";

const DEFAULT_CATALOG_PORT = DEFAULT_PORTS.catalogServer;

/** The catalog server (Hono, SQLite), loaded by the commands that run it: every other command starts without it. */
const catalogServer = () => import("@rbee/catalog-server");

/** Where `rbee catalog serve` keeps its SQLite file and blobs unless told: `<cache dir>/catalog-server`. */
function dataDirOf(cmd: Command, given?: string): string {
  return given ?? process.env.RBEE_CATALOG_DATA_DIR ?? join(configOf(cmd).cacheDir, "catalog-server");
}

/** `rbee catalog serve|account add|keygen|trust|trusted`. */
export function catalogCommand(): Command {
  const catalog = new Command("catalog").description(
    "the worker catalog server, publisher keys, and the keys the hives trust",
  );

  catalog
    .command("serve")
    .description("run a worker catalog server: the marketplace page, the catalog API, signed package downloads")
    .option(
      "-p, --port <port>",
      `the port (default ${DEFAULT_CATALOG_PORT}, RBEE_CATALOG_PORT; 0: any free one)`,
      intArg(0, 65535),
    )
    .option("--host <address>", "the address to bind (default 127.0.0.1)", "127.0.0.1")
    .option(
      "--data-dir <dir>",
      "where its SQLite file and package blobs go (default <cache dir>/catalog-server, RBEE_CATALOG_DATA_DIR)",
    )
    .option(
      "--blobs <where>",
      "where package artifacts go: a directory, or s3://<bucket>/<prefix> with the AWS_* variables (default <data dir>/blobs, RBEE_CATALOG_BLOBS)",
    )
    .option("--max-upload-mb <n>", "the largest publish it takes, in MiB (default 64)", intArg(1, 4096))
    .option(
      "--writes-per-minute <n>",
      "publishes and reviews one client may make a minute (default 30)",
      intArg(1, 100_000),
    )
    .option("--download-rate <bytes>", "bytes per second per download, 0 for no limit (default 0)", intArg(0))
    .option(
      "--dashboard-url <url>",
      "an rbee dashboard (your queen's URL, e.g. http://127.0.0.1:7833) the marketplace links to: Install on my cluster",
      (value: string) => {
        if (!/^https?:\/\/[^/\s]+/.test(value))
          throw new InvalidArgumentError(
            `expected an http:// or https:// URL such as http://127.0.0.1:7833, got '${value}'`,
          );
        return value;
      },
    )
    .action(
      async (
        flags: {
          port?: number;
          host: string;
          dataDir?: string;
          blobs?: string;
          maxUploadMb?: number;
          writesPerMinute?: number;
          downloadRate?: number;
          dashboardUrl?: string;
        },
        cmd: Command,
      ) => {
        const envPort = process.env.RBEE_CATALOG_PORT;
        const port = flags.port ?? (envPort ? intArg(0, 65535)(envPort) : DEFAULT_CATALOG_PORT);
        const dataDir = dataDirOf(cmd, flags.dataDir);
        const blobsSpec = flags.blobs ?? process.env.RBEE_CATALOG_BLOBS;
        const { BlobStoreConfigError, openBlobStore, serveCatalog } = await catalogServer();
        const blobs = await openBlobStore(blobsSpec, dataDir, process.env).catch((err: Error) => {
          throw err instanceof BlobStoreConfigError ? new CliError(err.message, EXIT.usage) : err;
        });
        const running = await serveCatalog({
          dataDir,
          blobs,
          host: flags.host,
          port,
          ...(flags.maxUploadMb ? { maxUploadBytes: flags.maxUploadMb * 1024 * 1024 } : {}),
          ...(flags.writesPerMinute ? { writeLimit: { max: flags.writesPerMinute, windowMs: 60_000 } } : {}),
          ...(flags.downloadRate ? { downloadBytesPerSecond: flags.downloadRate } : {}),
          ...(flags.dashboardUrl ? { dashboardUrl: flags.dashboardUrl } : {}),
        }).catch((err: NodeJS.ErrnoException) => {
          if (err.code === "EADDRINUSE") {
            throw new CliError(
              `port ${port} on ${flags.host} is in use (is a catalog server running?); choose another with --port`,
              EXIT.unavailable,
            );
          }
          throw err;
        });
        const blobsAt = blobsSpec ? `, blobs in ${blobsSpec}` : "";
        process.stdout.write(`catalog server listening on ${running.url} (data in ${dataDir}${blobsAt})\n`);
        await new Promise<void>((resolve) => {
          const stop = () => {
            process.off("SIGINT", stop);
            process.off("SIGTERM", stop);
            void running.close().then(resolve);
          };
          process.on("SIGINT", stop);
          process.on("SIGTERM", stop);
        });
      },
    );

  const account = catalog
    .command("account")
    .description("accounts of a catalog server you run (on its data directory)");
  account
    .command("add")
    .description(
      "create an account (or give it a new token) and print its token: reviewers, and publishers with --publisher",
    )
    .argument("<name>", "the account's name")
    .option("--publisher", "it may publish packages")
    .option("--data-dir <dir>", "the catalog server's data directory (default <cache dir>/catalog-server)")
    .action(async (name: string, flags: { publisher?: boolean; dataDir?: string }, cmd: Command) => {
      const dir = dataDirOf(cmd, flags.dataDir);
      mkdirSync(dir, { recursive: true });
      const { createAccount, SqliteCatalogStore } = await catalogServer();
      const store = new SqliteCatalogStore(join(dir, "catalog.sqlite"));
      try {
        const token = createAccount(store, name, flags.publisher === true);
        process.stdout.write(`${token}\n`);
      } catch (err) {
        throw new CliError((err as Error).message, EXIT.usage);
      } finally {
        store.close();
      }
    });

  catalog
    .command("keygen")
    .description(
      `make an ed25519 key to sign the packages you publish (${PUBLISHER_KEY_FILE} in the rbee config dir); prints its public key`,
    )
    .option("--out <file>", "write the private key here instead")
    .option("--force", "replace an existing key")
    .action((flags: { out?: string; force?: boolean }, cmd: Command) => {
      const config = configOf(cmd);
      const file = flags.out ?? join(config.configDir, PUBLISHER_KEY_FILE);
      if (existsSync(file) && !flags.force) {
        throw new CliError(
          `${file} exists; keep it (your packages are signed with it), or replace it with --force`,
          EXIT.usage,
        );
      }
      const key = generatePublisherKey();
      mkdirSync(join(file, ".."), { recursive: true });
      writeFileSync(file, key.privateKeyPem, { mode: 0o600 });
      process.stdout.write(`${key.publicKey}\n`);
      process.stderr.write(
        `private key written to ${file} (keep it secret); hives trust your packages after \`rbee catalog trust <name> ${key.publicKey}\`\n`,
      );
    });

  catalog
    .command("trust")
    .description("trust a publisher's key on this machine: its hive installs packages signed with it")
    .argument("<name>", "a name for the publisher")
    .argument("<public-key>", "ed25519:<base64>, as `rbee catalog keygen` and `rbee worker info` show it")
    .action(async (name: string, publicKey: string, _flags: unknown, cmd: Command) => {
      try {
        decodePublicKey(publicKey);
      } catch (err) {
        throw new CliError((err as Error).message, EXIT.usage);
      }
      await addTrustedKey(configOf(cmd).configDir, { name, public_key: publicKey });
      process.stdout.write(`trusting ${name} (${keyFingerprint(publicKey)})\n`);
    });

  catalog
    .command("trusted")
    .description("list the publisher keys this machine's hive trusts")
    .option("--json", "print them as JSON")
    .action(async (flags: { json?: boolean }, cmd: Command) => {
      const keys = await readTrustedKeys(configOf(cmd).configDir);
      if (flags.json) return printJson(keys);
      process.stdout.write(
        keys.length === 0
          ? "no trusted publishers: hives install only packages allowed explicitly (--allow-unsigned)\n"
          : `${renderTable(
              [{ header: "NAME" }, { header: "FINGERPRINT" }, { header: "KEY" }],
              keys.map((k) => [k.name, keyFingerprint(k.public_key), k.public_key]),
            )}\n`,
      );
    });
  return catalog;
}
