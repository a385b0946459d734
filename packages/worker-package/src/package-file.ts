import { readdir, readFile, stat } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { RbeeError, WorkerPackageManifest } from "@rbee/contract";
import { readTar, type TarEntry, TarFormatError, writeTar } from "./ustar.js";

/** The manifest's file name at the root of every worker package. */
export const MANIFEST_FILE = "rbee-worker.json";
/** Directories never packed. */
const SKIPPED = new Set([".git", ".DS_Store"]);

/** A package that is not well formed: 400 `invalid_package`, saying what is wrong. */
export class InvalidPackageError extends RbeeError {
  constructor(message: string) {
    super(message, { statusCode: 400, code: "invalid_package", param: "package" });
  }
}

/** The manifest of a package's `rbee-worker.json` text, or an InvalidPackageError naming the bad fields. */
export function parseManifest(text: string, where = MANIFEST_FILE): WorkerPackageManifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new InvalidPackageError(`${where} is not JSON: ${(err as Error).message}`);
  }
  const parsed = WorkerPackageManifest.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
    throw new InvalidPackageError(`${where} is not a valid worker package manifest: ${issues}`);
  }
  return parsed.data;
}

async function walk(root: string, dir: string, out: TarEntry[]): Promise<void> {
  const names = (await readdir(dir)).sort();
  for (const name of names) {
    if (SKIPPED.has(name)) continue;
    const full = join(dir, name);
    const s = await stat(full);
    const path = relative(root, full).split(sep).join("/");
    if (s.isDirectory()) {
      out.push({ path, mode: 0o755 });
      await walk(root, full, out);
    } else if (s.isFile()) {
      out.push({ path, data: await readFile(full), mode: s.mode & 0o111 ? 0o755 : 0o644 });
    }
  }
}

/** A directory with an `rbee-worker.json` packed as a tarball (same files, same bytes), with its manifest. */
export async function packDirectory(dir: string): Promise<{ manifest: WorkerPackageManifest; tarball: Buffer }> {
  let text: string;
  try {
    text = await readFile(join(dir, MANIFEST_FILE), "utf8");
  } catch {
    throw new InvalidPackageError(
      `${dir} has no ${MANIFEST_FILE}: a worker package needs one (docs/worker-catalog.md shows its fields)`,
    );
  }
  const manifest = parseManifest(text, join(dir, MANIFEST_FILE));
  const entries: TarEntry[] = [];
  await walk(dir, dir, entries);
  if (!entries.some((e) => e.path === manifest.entry && e.data !== undefined)) {
    throw new InvalidPackageError(
      `the entry point '${manifest.entry}' named in ${MANIFEST_FILE} is not a file in ${dir}`,
    );
  }
  return { manifest, tarball: writeTar(entries) };
}

/** A package's members and manifest, read from its tarball; InvalidPackageError when it is not one. */
export function readPackage(tarball: Buffer): { manifest: WorkerPackageManifest; entries: TarEntry[] } {
  let entries: TarEntry[];
  try {
    entries = readTar(tarball);
  } catch (err) {
    if (err instanceof TarFormatError) throw new InvalidPackageError(`not a readable package tarball: ${err.message}`);
    throw err;
  }
  const file = entries.find((e) => e.path === MANIFEST_FILE);
  if (file?.data === undefined) throw new InvalidPackageError(`the package has no ${MANIFEST_FILE} at its root`);
  const manifest = parseManifest(file.data.toString("utf8"));
  if (!entries.some((e) => e.path === manifest.entry && e.data !== undefined)) {
    throw new InvalidPackageError(`the package's entry point '${manifest.entry}' is not a file in it`);
  }
  return { manifest, entries };
}
