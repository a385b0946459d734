import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { z } from "zod";
import { decodePublicKey } from "./signing.js";
import type { TrustedKey } from "./verify-package.js";

/** `trusted-publishers.json` in rbee's config directory: the publisher keys a hive installs packages from. */
export const TRUSTED_KEYS_FILE = "trusted-publishers.json";

const TrustedKeysFile = z.object({
  publishers: z.array(z.object({ name: z.string().min(1), public_key: z.string() })),
});

export function trustedKeysPath(configDir: string): string {
  return join(configDir, TRUSTED_KEYS_FILE);
}

/** The trusted keys in a config directory (none when the file is missing). Throws on a malformed file. */
export async function readTrustedKeys(configDir: string): Promise<TrustedKey[]> {
  const path = trustedKeysPath(configDir);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    return [];
  }
  const parsed = TrustedKeysFile.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`${path} is not a list of trusted publishers: ${parsed.error.message}`);
  return parsed.data.publishers;
}

/** Adds (or renames) a trusted key; the file is written whole, then renamed into place. */
export async function addTrustedKey(configDir: string, key: TrustedKey): Promise<TrustedKey[]> {
  decodePublicKey(key.public_key); // refuses a malformed key before it is written
  const keys = (await readTrustedKeys(configDir)).filter((k) => k.public_key !== key.public_key);
  keys.push(key);
  const path = trustedKeysPath(configDir);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(`${path}.tmp`, `${JSON.stringify({ publishers: keys }, null, 2)}\n`, { mode: 0o644 });
  await rename(`${path}.tmp`, path);
  return keys;
}
