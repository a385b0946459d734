import { createHash, randomBytes } from "node:crypto";
import { join } from "node:path";
import { type ApiKeyInfo, NotFoundError } from "@rbee/contract";
import { matchesSecret } from "@rbee/server-kit";
import { z } from "zod";
import { readJsonFile, writeJsonFile } from "./json-file.js";

export const API_KEYS_FILE = "api-keys.json";

const StoredKey = z.object({
  id: z.string(),
  name: z.string(),
  prefix: z.string(),
  sha256: z.string(),
  created_at: z.string(),
  admin: z.boolean().optional(),
});
const StoredKeys = z.object({ keys: z.array(StoredKey) });
type StoredKey = z.infer<typeof StoredKey>;

function sha256(s: string): string {
  return createHash("sha256").update(s).digest("hex");
}

/**
 * The queen's API keys: those created with `rbee key create` (kept as sha256 hashes in
 * `<config>/api-keys.json`, mode 0600) and those given in RBEE_API_KEYS (comma-separated).
 * With none at all, the OpenAI and job routes are open (loopback only).
 */
export class ApiKeyStore {
  readonly #file: string;
  readonly #envKeys: string[];
  #keys: StoredKey[];

  constructor(configDir: string, env: NodeJS.ProcessEnv = process.env) {
    this.#file = join(configDir, API_KEYS_FILE);
    this.#envKeys = (env.RBEE_API_KEYS ?? "")
      .split(",")
      .map((k) => k.trim())
      .filter((k) => k !== "");
    this.#keys = this.#load();
  }

  /** True when any key exists: then every OpenAI and job route wants one. */
  get enabled(): boolean {
    return this.#envKeys.length > 0 || this.#keys.length > 0;
  }

  verify(token: string): boolean {
    if (this.#envKeys.some((k) => matchesSecret(token, k))) return true;
    const hash = sha256(token);
    return this.#keys.some((k) => matchesSecret(hash, k.sha256));
  }

  /** True for a stored key made with `admin`: it may create and revoke keys (keys from RBEE_API_KEYS may not). */
  verifyAdmin(token: string): boolean {
    const hash = sha256(token);
    return this.#keys.some((k) => k.admin === true && matchesSecret(hash, k.sha256));
  }

  list(): ApiKeyInfo[] {
    return this.#keys.map(({ id, name, prefix, created_at, admin }) => ({
      id,
      name,
      prefix,
      created_at,
      admin: admin === true,
    }));
  }

  /** Creates a key; the secret is returned here and never again. */
  create(name: string, admin = false): ApiKeyInfo & { key: string } {
    const key = `rbee_sk_${randomBytes(24).toString("base64url")}`;
    const info: StoredKey = {
      id: `key_${randomBytes(6).toString("hex")}`,
      name,
      prefix: key.slice(0, 12),
      sha256: sha256(key),
      created_at: new Date().toISOString(),
      ...(admin ? { admin: true } : {}),
    };
    this.#keys = [...this.#keys, info];
    this.#save();
    const { sha256: _hash, ...shown } = info;
    return { ...shown, admin, key };
  }

  remove(id: string): void {
    const next = this.#keys.filter((k) => k.id !== id);
    if (next.length === this.#keys.length)
      throw new NotFoundError(`no API key with id '${id}'; list them with \`rbee key ls\``, "key_not_found");
    this.#keys = next;
    this.#save();
  }

  #load(): StoredKey[] {
    return readJsonFile(this.#file, StoredKeys, "API key (keys in it stop working)")?.keys ?? [];
  }

  #save(): void {
    writeJsonFile(this.#file, { keys: this.#keys });
  }
}
