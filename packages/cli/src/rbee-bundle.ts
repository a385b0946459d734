import { existsSync, lstatSync, readdirSync, readFileSync, realpathSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { CliError } from "./exit-codes.js";

/**
 * What `rbee hive install` copies to another machine: this rbee as it runs here (the CLI package,
 * the packages it depends on, their npm dependencies), in the same layout relative to a common
 * root, so that the copy runs there as it runs here. Left out: what running does not need
 * (type declarations, source maps, the llama.cpp source bundle for building from source, tests)
 * and the prebuilt llama.cpp binaries for other platforms and for GPUs the machine does not have.
 */
export interface Bundle {
  /** The directory the paths are relative to. */
  root: string;
  /** Files and symbolic links, relative to `root`, in a stable order. */
  paths: string[];
  /** Bytes of the regular files. */
  bytes: number;
  /** The rbee entry script, relative to `root`. */
  bin: string;
  /** The packages it holds, by name. */
  packages: string[];
  /** The prebuilt llama.cpp binary packages it holds (e.g. `@node-llama-cpp/linux-x64`). */
  llamaBuilds: string[];
}

export interface BundleTarget {
  /** `process.platform` of the machine it is for. */
  platform: NodeJS.Platform;
  /** `process.arch` of the machine it is for. */
  arch: string;
  /** GPU kinds whose llama.cpp builds to include (`cuda`, `vulkan`); Metal comes with macOS builds. */
  gpus: ReadonlySet<string>;
}

const LLAMA_BUILDS = "@node-llama-cpp/";
const LLAMA_PLATFORM: Partial<Record<NodeJS.Platform, string>> = { linux: "linux", darwin: "mac", win32: "win" };

/** File names never copied: declarations, maps, build info, editor and OS litter. */
const SKIP_FILE = /(\.d\.[cm]?ts|\.map|\.tsbuildinfo|\.DS_Store)$/;
/** Directories never copied (dependencies are walked one by one instead of copying node_modules). */
const SKIP_DIR = new Set([".git", ".cache", "node_modules", "test", "tests", "__tests__", ".github"]);
/** Big files a running rbee does not read: node-llama-cpp's llama.cpp source (builds run with `build: "never"`). */
const SKIP_PATH = [`node-llama-cpp${sep}llama${sep}gitRelease.bundle`];

/** The rbee package this code runs from (packages/cli in a checkout). */
export function cliPackageDir(): string {
  return realpathSync(fileURLToPath(new URL("..", import.meta.url)));
}

/** Whether a llama.cpp binary package (`@node-llama-cpp/linux-x64-cuda`) runs on the target. */
export function llamaBuildFits(name: string, target: BundleTarget): boolean {
  const platform = LLAMA_PLATFORM[target.platform];
  if (platform === undefined) return false;
  const build = name.slice(LLAMA_BUILDS.length);
  const base = `${platform}-${target.arch}`;
  if (build === base) return true;
  if (!build.startsWith(`${base}-`)) return false;
  const gpu = build.slice(base.length + 1).split("-")[0] ?? "";
  return gpu === "metal" || target.gpus.has(gpu);
}

interface Found {
  name: string;
  dir: string;
  /** A symbolic link that resolution went through (node_modules/@rbee/hive → packages/hive). */
  link: string | undefined;
}

/** Node's resolution of a package name from a package directory: the nearest node_modules/<name> upward. */
function resolvePackage(from: string, name: string): Found | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", name);
    if (existsSync(join(candidate, "package.json"))) {
      const link = lstatSync(candidate).isSymbolicLink() ? candidate : undefined;
      return { name, dir: realpathSync(candidate), link };
    }
    if (dirname(dir) === dir) return undefined;
  }
}

interface PackageJson {
  name?: string;
  files?: string[];
  bin?: string | Record<string, string>;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

function readPackageJson(dir: string): PackageJson {
  return JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as PackageJson;
}

/** Every file under `dir` (recursively), minus what is never copied. */
function walk(dir: string, out: string[]): void {
  let entries: import("node:fs").Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) {
      if (!SKIP_DIR.has(e.name)) walk(path, out);
    } else if ((e.isFile() || e.isSymbolicLink()) && !SKIP_FILE.test(e.name)) {
      if (!SKIP_PATH.some((p) => path.endsWith(p))) out.push(path);
    }
  }
}

/**
 * The files of one package: for a package of this checkout (not under node_modules) what its
 * `files` field publishes, as npm would; for an installed dependency all of it (npm already
 * published only what it needs), nested node_modules aside.
 */
function packageFiles(dir: string, pkg: PackageJson): string[] {
  const out = [join(dir, "package.json")];
  const installed = dir.split(sep).includes("node_modules");
  if (installed || !pkg.files) {
    walk(dir, out);
    return [...new Set(out)];
  }
  for (const entry of pkg.files) {
    const path = join(dir, entry);
    if (!existsSync(path)) continue;
    if (lstatSync(path).isDirectory()) walk(path, out);
    else out.push(path);
  }
  return [...new Set(out)];
}

/** The longest directory that holds every path. */
function commonRoot(paths: readonly string[]): string {
  let root = dirname(paths[0] ?? "/");
  for (const p of paths) {
    while (p !== root && !p.startsWith(root.endsWith(sep) ? root : root + sep)) root = dirname(root);
  }
  return root;
}

/** Collects the bundle for `target`, starting from the rbee package this process runs. */
export function collectBundle(target: BundleTarget, cliDir = cliPackageDir()): Bundle {
  const packages = new Map<string, Found>();
  const queue: Found[] = [{ name: readPackageJson(cliDir).name ?? "rbee", dir: cliDir, link: undefined }];
  const links: string[] = [];
  while (queue.length > 0) {
    const p = queue.shift() as Found;
    if (p.link) links.push(p.link);
    if (packages.has(p.dir)) continue;
    packages.set(p.dir, p);
    const pkg = readPackageJson(p.dir);
    const optional = new Set(Object.keys(pkg.optionalDependencies ?? {}));
    for (const name of new Set([...Object.keys(pkg.dependencies ?? {}), ...optional])) {
      if (name.startsWith(LLAMA_BUILDS) && !llamaBuildFits(name, target)) continue;
      const found = resolvePackage(p.dir, name);
      if (found) queue.push(found);
      else if (!optional.has(name)) {
        throw new CliError(
          `cannot find ${name}, a dependency of ${pkg.name ?? p.dir}, from ${p.dir}: run \`npm install\` in the rbee checkout`,
        );
      }
    }
  }
  const files: string[] = [];
  for (const p of packages.values()) files.push(...packageFiles(p.dir, readPackageJson(p.dir)));
  const all = [...new Set([...files, ...links])];
  const root = commonRoot(all);
  let bytes = 0;
  for (const f of files) {
    const st = lstatSync(f);
    if (st.isFile()) bytes += st.size;
  }
  const names = [...packages.values()].map((p) => p.name);
  return {
    root,
    paths: all.map((f) => relative(root, f)).sort(),
    bytes,
    bin: relative(root, join(cliDir, "bin", "rbee.js")),
    packages: names.sort(),
    llamaBuilds: names.filter((n) => n.startsWith(LLAMA_BUILDS)).sort(),
  };
}
