import { randomBytes } from "node:crypto";
import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { ArtifactMetadata, parseJson, safeParse } from "@rbee/contract";

export const METADATA_FILE = "metadata.json";

export type MetadataRead = { ok: true; metadata: ArtifactMetadata } | { ok: false; error: string };

/**
 * Reads and validates `<dir>/metadata.json`. Never throws: a missing, truncated or invalid file is
 * an `{ok: false}` whose `error` says what is wrong with it, in words.
 */
export async function readMetadataFile(dir: string): Promise<MetadataRead> {
  const file = join(dir, METADATA_FILE);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return { ok: false, error: `${METADATA_FILE} is missing` };
    return { ok: false, error: `${METADATA_FILE} cannot be read: ${(err as Error).message}` };
  }
  if (text.trim() === "") return { ok: false, error: `${METADATA_FILE} is empty` };
  const json = parseJson(text);
  if (!json.ok) return { ok: false, error: `${METADATA_FILE} is not valid JSON (${json.message})` };
  const parsed = safeParse(ArtifactMetadata, json.value, METADATA_FILE);
  if (!parsed.ok) return { ok: false, error: parsed.error.message };
  return { ok: true, metadata: parsed.value };
}

/**
 * Writes `<dir>/metadata.json` atomically: a temporary file in the same directory, flushed to disk,
 * then renamed over the old one, so a reader sees the old file or the new one, never half of one.
 */
export async function writeMetadataFile(dir: string, metadata: ArtifactMetadata): Promise<void> {
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${METADATA_FILE}.${process.pid}-${randomBytes(4).toString("hex")}.tmp`);
  const handle = await open(tmp, "wx", 0o644);
  try {
    await handle.writeFile(`${JSON.stringify(metadata, null, 2)}\n`, "utf8");
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(tmp, join(dir, METADATA_FILE));
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
