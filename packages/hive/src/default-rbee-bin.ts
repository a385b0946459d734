import { existsSync } from "node:fs";
import { basename } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The `rbee` CLI entry used to spawn workers: the bin of this checkout (packages/cli/bin/rbee.js,
 * found from this file in packages/hive/dist), else the script this process runs when that is the
 * rbee bin (a hive started by `rbee hive start`).
 */
export function defaultRbeeBin(): string {
  const checkout = fileURLToPath(new URL("../../cli/bin/rbee.js", import.meta.url));
  if (existsSync(checkout)) return checkout;
  const script = process.argv[1];
  if (script !== undefined && /^rbee(\.js)?$/.test(basename(script))) return script;
  return checkout;
}
