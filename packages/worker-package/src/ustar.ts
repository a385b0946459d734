/**
 * A minimal ustar (POSIX tar) writer and reader for worker packages: regular files and directories
 * only, names up to 255 bytes (prefix + name), no links, no devices. Reading refuses anything else,
 * and any path that would leave the directory it is extracted into.
 */

const BLOCK = 512;

/** One member of a package tarball. */
export interface TarEntry {
  /** A relative path, '/'-separated. */
  path: string;
  /** The bytes of a file; undefined for a directory. */
  data?: Buffer;
  /** Permission bits (0o644 for files, 0o755 for directories and executables). */
  mode: number;
}

/** A tarball that cannot be read as a worker package, with what is wrong. */
export class TarFormatError extends Error {
  override name = "TarFormatError";
}

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, "0")}\0`;
}

function splitName(path: string): { name: string; prefix: string } {
  if (Buffer.byteLength(path) <= 100) return { name: path, prefix: "" };
  const cut = path.lastIndexOf("/", path.length - 1);
  const prefix = path.slice(0, cut);
  const name = path.slice(cut + 1);
  if (cut <= 0 || Buffer.byteLength(name) > 100 || Buffer.byteLength(prefix) > 155) {
    throw new TarFormatError(`path too long for a package (at most 255 bytes, 100 per name): ${path}`);
  }
  return { name, prefix };
}

function header(entry: TarEntry): Buffer {
  const h = Buffer.alloc(BLOCK);
  const isDir = entry.data === undefined;
  const { name, prefix } = splitName(isDir ? `${entry.path.replace(/\/$/, "")}/` : entry.path);
  h.write(name, 0, 100, "utf8");
  h.write(octal(entry.mode & 0o7777, 8), 100, "ascii");
  h.write(octal(0, 8), 108, "ascii"); // uid
  h.write(octal(0, 8), 116, "ascii"); // gid
  h.write(octal(entry.data?.length ?? 0, 12), 124, "ascii");
  h.write(octal(0, 12), 136, "ascii"); // mtime 0: the same files give the same bytes
  h.write("        ", 148, "ascii"); // checksum placeholder
  h.write(isDir ? "5" : "0", 156, "ascii");
  h.write("ustar\0", 257, "ascii");
  h.write("00", 263, "ascii");
  h.write(prefix, 345, 155, "utf8");
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "ascii");
  return h;
}

/** The tarball of these entries, in the order given (sort them for reproducible bytes). */
export function writeTar(entries: readonly TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    parts.push(header(e));
    if (e.data !== undefined) {
      parts.push(e.data);
      const pad = (BLOCK - (e.data.length % BLOCK)) % BLOCK;
      if (pad > 0) parts.push(Buffer.alloc(pad));
    }
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}

function field(h: Buffer, start: number, length: number): string {
  const raw = h.subarray(start, start + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end === -1 ? length : end).toString("utf8");
}

function readOctal(h: Buffer, start: number, length: number, what: string): number {
  const text = field(h, start, length).trim();
  if (!/^[0-7]*$/.test(text)) throw new TarFormatError(`bad ${what} field in a tar header: '${text}'`);
  return text === "" ? 0 : Number.parseInt(text, 8);
}

/** Whether a member path stays inside the directory it is extracted to. */
export function isSafeMemberPath(path: string): boolean {
  if (path === "" || path.startsWith("/") || path.includes("\\") || path.includes("\0")) return false;
  return path.split("/").every((part) => part !== ".." && part !== "");
}

/**
 * The entries of a tarball. Refuses a bad header checksum, a truncated member, a link or device,
 * and a path that is absolute or climbs out with `..`.
 */
export function readTar(tar: Buffer): TarEntry[] {
  const entries: TarEntry[] = [];
  let offset = 0;
  while (offset + BLOCK <= tar.length) {
    const h = tar.subarray(offset, offset + BLOCK);
    if (h.every((b) => b === 0)) return entries;
    const stored = readOctal(h, 148, 8, "checksum");
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : (h[i] as number);
    if (sum !== stored)
      throw new TarFormatError(`tar header checksum mismatch at byte ${offset}: the archive is damaged`);
    const name = field(h, 0, 100);
    const prefix = field(h, 345, 155);
    const full = (prefix === "" ? name : `${prefix}/${name}`).replace(/^\.\//, "");
    const type = String.fromCharCode(h[156] as number);
    const size = readOctal(h, 124, 12, "size");
    const mode = readOctal(h, 100, 8, "mode");
    offset += BLOCK;
    if (type === "5") {
      const path = full.replace(/\/$/, "");
      if (path !== "" && path !== ".") {
        if (!isSafeMemberPath(path)) throw new TarFormatError(`unsafe path in the package: ${full}`);
        entries.push({ path, mode });
      }
      continue;
    }
    if (type !== "0" && type !== "\0") {
      throw new TarFormatError(
        `'${full}' is not a regular file or directory (tar type '${type}'): packages hold only those`,
      );
    }
    if (!isSafeMemberPath(full)) throw new TarFormatError(`unsafe path in the package: ${full}`);
    if (offset + size > tar.length) throw new TarFormatError(`'${full}' is cut short: the archive is truncated`);
    entries.push({ path: full, data: Buffer.from(tar.subarray(offset, offset + size)), mode });
    offset += Math.ceil(size / BLOCK) * BLOCK;
  }
  throw new TarFormatError("the archive ends without its end-of-archive blocks: it is truncated");
}
