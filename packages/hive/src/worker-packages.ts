import { existsSync } from "node:fs";
import { chmod, mkdir, readdir, readFile, rename, rm, symlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type InstalledPackageInfo,
  type InstallWorkerPackageRequest,
  RbeeError,
  WorkerPackageManifest,
} from "@rbee/contract";
import { ChecksumMismatchError, type DownloadProgress, downloadFile } from "@rbee/downloader";
import type { Logger } from "@rbee/server-kit";
import { PackageVerificationError, readTrustedKeys, verifyPackage } from "@rbee/worker-package";
import { z } from "zod";
import { type PackageWorkerType, packageWorkerType } from "./package-worker-type.js";

/** What the hive keeps of an installed package: `<workers>/<id>/installed-package.json`. */
const InstalledState = z.object({
  manifest: WorkerPackageManifest,
  info: z.looseObject({}).transform((v) => v as unknown as InstalledPackageInfo),
  previous: z.object({ manifest: WorkerPackageManifest, info: z.looseObject({}) }).optional(),
});
type InstalledState = z.infer<typeof InstalledState>;

const STATE_FILE = "installed-package.json";

export interface WorkerPackagesOptions {
  /** `<cache>/workers`: `<id>/versions/<version>/` holds each installed version's files. */
  dir: string;
  /** Where downloads are kept until they are verified (`<cache>/tmp`). */
  tmpDir: string;
  /** rbee's config directory, with `trusted-publishers.json`. */
  configDir: string;
  /** Built-in type ids: a package may not take one. */
  builtIn: readonly string[];
  log: Logger;
}

export interface InstallCallbacks {
  narrate?: (message: string) => void;
  progress?: (p: DownloadProgress) => void;
}

export interface InstallOutcome {
  id: string;
  version: string;
  previous_version?: string;
  /** True when that version was already installed (nothing was downloaded). */
  unchanged: boolean;
  trust: InstalledPackageInfo["trust"];
}

/** This machine's platform as packages name it: linux-x64, darwin-arm64, ... */
export function currentPlatform(): string {
  return `${process.platform}-${process.arch}`;
}

/** The directory of the worker kit this hive runs with, which installed packages import. */
function workerKitDir(): string | undefined {
  try {
    let dir = dirname(fileURLToPath(import.meta.resolve("@rbee/worker-kit")));
    while (!existsSync(join(dir, "package.json")) && dirname(dir) !== dir) dir = dirname(dir);
    return dir;
  } catch {
    return undefined;
  }
}

/**
 * The worker packages installed on this machine: installs (download with resume, sha256, signature
 * against the trusted publisher keys, manifest), switches versions atomically (a failed install
 * leaves the previous version in place), rolls back, uninstalls; and gives each installed package's
 * worker type to the worker catalog.
 */
export class WorkerPackages {
  readonly #o: WorkerPackagesOptions;
  #types: Record<string, PackageWorkerType> = {};
  readonly #busy = new Map<string, Promise<unknown>>();

  constructor(options: WorkerPackagesOptions) {
    this.#o = options;
  }

  /** The installed packages' worker types, by id. */
  types(): Readonly<Record<string, PackageWorkerType>> {
    return this.#types;
  }

  #stateFile(id: string): string {
    return join(this.#o.dir, id, STATE_FILE);
  }

  #versionDir(id: string, version: string): string {
    return join(this.#o.dir, id, "versions", version);
  }

  /** Reads every installed package's state (at start, and after each change). */
  async load(): Promise<void> {
    const types: Record<string, PackageWorkerType> = {};
    let names: string[] = [];
    try {
      names = await readdir(this.#o.dir);
    } catch {}
    for (const id of names) {
      const state = await this.#read(id);
      if (state === undefined) continue;
      types[id] = packageWorkerType(state.manifest, this.#versionDir(id, state.manifest.version), state.info);
    }
    this.#types = types;
  }

  async #read(id: string): Promise<InstalledState | undefined> {
    let text: string;
    try {
      text = await readFile(this.#stateFile(id), "utf8");
    } catch {
      return undefined;
    }
    const parsed = InstalledState.safeParse(JSON.parse(text));
    if (!parsed.success) {
      this.#o.log.warn(
        { worker_type: id, err: parsed.error.message },
        "an installed package's state is unreadable; skipped",
      );
      return undefined;
    }
    return parsed.data;
  }

  async #write(id: string, state: InstalledState): Promise<void> {
    const file = this.#stateFile(id);
    await writeFile(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
    await rename(`${file}.tmp`, file);
  }

  /** One change at a time per package. */
  #exclusive<T>(id: string, fn: () => Promise<T>): Promise<T> {
    if (this.#busy.has(id)) {
      throw new RbeeError(`${id} is being installed or changed already; wait for that to finish`, {
        statusCode: 409,
        code: "package_busy",
      });
    }
    const p = fn().finally(() => this.#busy.delete(id));
    this.#busy.set(id, p);
    return p;
  }

  /**
   * Installs a version: downloads the artifact for this platform (resuming a part left by an
   * interrupted try), verifies it, extracts it beside the current version, then switches to it
   * with one rename of the state file. Any failure before that switch leaves what was installed.
   * @throws PackageVerificationError (422) naming the check that failed; RbeeError 409 for a
   *   built-in type's id or when no artifact fits this platform.
   */
  install(req: InstallWorkerPackageRequest, cb: InstallCallbacks = {}, signal?: AbortSignal): Promise<InstallOutcome> {
    if (this.#o.builtIn.includes(req.id)) {
      throw new RbeeError(`'${req.id}' is a worker type built into rbee; a package cannot replace it`, {
        statusCode: 409,
        code: "worker_type_builtin",
        param: "id",
      });
    }
    return this.#exclusive(req.id, () => this.#install(req, cb, signal));
  }

  async #install(
    req: InstallWorkerPackageRequest,
    cb: InstallCallbacks,
    signal?: AbortSignal,
  ): Promise<InstallOutcome> {
    const platform = currentPlatform();
    const artifact =
      req.artifacts.find((a) => a.platform === platform) ?? req.artifacts.find((a) => a.platform === "any");
    if (artifact === undefined) {
      throw new RbeeError(
        `${req.id}@${req.version} has no build for ${platform} (it has ${req.artifacts.map((a) => a.platform).join(", ")})`,
        { statusCode: 409, code: "no_artifact_for_platform", param: "platform" },
      );
    }
    const before = await this.#read(req.id);
    if (before?.manifest.version === req.version && before.info.sha256 === artifact.sha256) {
      cb.narrate?.(`${req.id}@${req.version} is already installed`);
      if (before.info.auto_update !== req.auto_update) {
        await this.#write(req.id, { ...before, info: { ...before.info, auto_update: req.auto_update } });
        await this.load();
      }
      return { id: req.id, version: req.version, unchanged: true, trust: before.info.trust };
    }
    await mkdir(this.#o.tmpDir, { recursive: true });
    const file = join(this.#o.tmpDir, `worker-package-${req.id}-${req.version}-${artifact.platform}.tar`);
    cb.narrate?.(`downloading ${req.id}@${req.version} (${artifact.platform}, ${artifact.size_bytes} bytes)`);
    try {
      const got = await downloadFile({
        url: artifact.url,
        destPath: file,
        partPath: `${file}.part`,
        size: artifact.size_bytes,
        sha256: artifact.sha256,
        signal,
        onProgress: cb.progress,
      });
      if (got.resumedFromBytes > 0) {
        cb.narrate?.(`resumed the download of ${req.id}@${req.version} at byte ${got.resumedFromBytes} of ${got.size}`);
      }
    } catch (err) {
      if (err instanceof ChecksumMismatchError) {
        throw new PackageVerificationError(
          "sha256",
          `the package downloaded from ${artifact.url} has sha256 ${err.actual}, the catalog says ${err.expected}: the file was altered or damaged; nothing was installed`,
        );
      }
      throw err;
    }
    try {
      const tarball = await readFile(file);
      const verified = verifyPackage({
        tarball,
        id: req.id,
        version: req.version,
        platform: artifact.platform,
        sha256: artifact.sha256,
        signature: artifact.signature,
        publicKey: artifact.public_key,
        trusted: await readTrustedKeys(this.#o.configDir),
        allowUnsigned: req.allow_unsigned,
      });
      cb.narrate?.(
        verified.trust === "verified"
          ? `verified ${req.id}@${req.version}: sha256 matches, signed by trusted publisher '${verified.publisher?.name}'`
          : `installing ${req.id}@${req.version} without a trusted signature, as allowed for this package`,
      );
      const target = this.#versionDir(req.id, req.version);
      const staging = `${target}.staging-${process.pid}-${Date.now()}`;
      await rm(staging, { recursive: true, force: true });
      for (const e of verified.entries) {
        const dest = join(staging, ...e.path.split("/"));
        if (e.data === undefined) {
          await mkdir(dest, { recursive: true });
          continue;
        }
        await mkdir(dirname(dest), { recursive: true });
        await writeFile(dest, e.data);
        await chmod(dest, e.mode & 0o755);
      }
      await this.#linkWorkerKit();
      if (before?.manifest.version === req.version) {
        // the same version number with other bytes (another platform's build, or a republished catalog)
        await rm(target, { recursive: true, force: true });
      } else if (existsSync(target)) await rm(target, { recursive: true, force: true });
      await rename(staging, target);
      const info: InstalledPackageInfo = {
        version: req.version,
        sha256: artifact.sha256,
        trust: verified.trust,
        ...(artifact.public_key ? { publisher_key: artifact.public_key } : {}),
        source_url: artifact.url,
        installed_at: new Date().toISOString(),
        auto_update: req.auto_update,
        ...(before && before.manifest.version !== req.version ? { previous_version: before.manifest.version } : {}),
        ...(verified.manifest.memory_bytes ? { memory_bytes: verified.manifest.memory_bytes } : {}),
        category: verified.manifest.category,
      };
      await this.#write(req.id, {
        manifest: verified.manifest,
        info,
        ...(before && before.manifest.version !== req.version
          ? { previous: { manifest: before.manifest, info: before.info } }
          : {}),
      });
      await this.#prune(req.id, [req.version, ...(before ? [before.manifest.version] : [])]);
      await this.load();
      cb.narrate?.(
        `installed ${req.id}@${req.version}${info.previous_version ? ` (was ${info.previous_version})` : ""}`,
      );
      return {
        id: req.id,
        version: req.version,
        ...(info.previous_version ? { previous_version: info.previous_version } : {}),
        unchanged: false,
        trust: verified.trust,
      };
    } finally {
      await rm(file, { force: true });
    }
  }

  /** Removes version directories other than `keep` (the current one and the one before it). */
  async #prune(id: string, keep: string[]): Promise<void> {
    const dir = join(this.#o.dir, id, "versions");
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (!keep.includes(name)) await rm(join(dir, name), { recursive: true, force: true });
    }
  }

  /** Installed packages import `@rbee/worker-kit`: the hive lends them its own, one link for all. */
  async #linkWorkerKit(): Promise<void> {
    const kit = workerKitDir();
    const link = join(this.#o.dir, "node_modules", "@rbee", "worker-kit");
    if (kit === undefined || existsSync(link)) return;
    await mkdir(dirname(link), { recursive: true });
    await symlink(kit, link, "dir").catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "EEXIST") throw err;
    });
  }

  /** Goes back to the version installed before the current one. */
  rollback(id: string): Promise<InstallOutcome> {
    return this.#exclusive(id, async () => {
      const state = await this.#read(id);
      if (state === undefined) throw notInstalled(id);
      if (state.previous === undefined) {
        throw new RbeeError(`${id} has no earlier version on this hive to roll back to`, {
          statusCode: 409,
          code: "nothing_to_roll_back",
        });
      }
      const failed = state.manifest.version;
      const info = { ...(state.previous.info as unknown as InstalledPackageInfo), auto_update: state.info.auto_update };
      await this.#write(id, { manifest: state.previous.manifest, info });
      await rm(this.#versionDir(id, failed), { recursive: true, force: true });
      await this.load();
      this.#o.log.warn({ worker_type: id, from: failed, to: info.version }, "rolled a worker package back");
      return { id, version: info.version, previous_version: failed, unchanged: false, trust: info.trust };
    });
  }

  /** Removes a package's files and state; `inUse` lists its running workers (then it refuses). */
  uninstall(id: string, inUse: string[]): Promise<{ id: string; version: string }> {
    return this.#exclusive(id, async () => {
      const state = await this.#read(id);
      if (state === undefined) throw notInstalled(id);
      if (inUse.length > 0) {
        throw new RbeeError(
          `${id} has running workers on this hive (${inUse.join(", ")}); stop them first (rbee worker stop <id>)`,
          { statusCode: 409, code: "worker_type_in_use" },
        );
      }
      await rm(join(this.#o.dir, id), { recursive: true, force: true });
      await this.load();
      return { id, version: state.manifest.version };
    });
  }
}

function notInstalled(id: string): RbeeError {
  return new RbeeError(`no worker package '${id}' is installed on this hive`, {
    statusCode: 404,
    code: "package_not_installed",
    param: "id",
  });
}
