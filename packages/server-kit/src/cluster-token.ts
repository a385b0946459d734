import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const CLUSTER_TOKEN_FILE = "cluster-token";

/**
 * The cluster token: the secret every queen↔hive↔worker call carries. RBEE_CLUSTER_TOKEN wins;
 * otherwise it is read from `<config>/cluster-token`, which the first daemon to start creates
 * (mode 0600, created exclusively so that a queen and a hive starting together agree on one).
 */
export function loadOrCreateClusterToken(configDirPath: string, env: NodeJS.ProcessEnv = process.env): string {
  if (env.RBEE_CLUSTER_TOKEN) return env.RBEE_CLUSTER_TOKEN;
  const file = join(configDirPath, CLUSTER_TOKEN_FILE);
  const existing = readToken(file);
  if (existing) return existing;
  mkdirSync(configDirPath, { recursive: true, mode: 0o700 });
  // Web Crypto's CSPRNG, global: importing node:crypto here would load it in every client that only reads the token
  const token = `rbee_ct_${Buffer.from(crypto.getRandomValues(new Uint8Array(24))).toString("base64url")}`;
  try {
    writeFileSync(file, `${token}\n`, { mode: 0o600, flag: "wx" });
    return token;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    const raced = readToken(file);
    if (!raced) throw new Error(`${file} exists but is empty; delete it and start again`);
    return raced;
  }
}

/** The cluster token if one exists (env or file); never creates one. */
export function readClusterToken(configDirPath: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.RBEE_CLUSTER_TOKEN || readToken(join(configDirPath, CLUSTER_TOKEN_FILE));
}

function readToken(file: string): string | undefined {
  try {
    const mode = statSync(file).mode & 0o777;
    if (mode & 0o077) chmodSync(file, 0o600); // tighten a copy that lost its mode
    const token = readFileSync(file, "utf8").trim();
    return token === "" ? undefined : token;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}
