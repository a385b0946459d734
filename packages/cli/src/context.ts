import type { Command } from "commander";
import { type CliConfig, type GlobalFlags, resolveCliConfig } from "./config.js";
import { QueenClient } from "./queen-client.js";

/** The resolved configuration for a command: its global flags (--queen-url, --api-key), the environment, the config file. */
export function configOf(cmd: Command): CliConfig {
  const g = cmd.optsWithGlobals<GlobalFlags>();
  return resolveCliConfig({ queenUrl: g.queenUrl, apiKey: g.apiKey });
}

export function clientOf(config: CliConfig): QueenClient {
  return new QueenClient(config);
}

/** Writes a value as JSON on stdout: indented for one document, one line for a stream of them. */
export function printJson(value: unknown, oneLine = false): void {
  process.stdout.write(`${oneLine ? JSON.stringify(value) : JSON.stringify(value, null, 2)}\n`);
}
