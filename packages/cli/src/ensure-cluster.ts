import { type CliConfig, isLoopbackUrl } from "./config.js";
import type { QueenClient } from "./queen-client.js";
import type { Narrator } from "./render/narration.js";

/**
 * "Works from nothing", for `rbee infer`, `rbee chat` and `rbee image`: when the queen answers and,
 * for a queen on this machine, knows a hive, nothing is done (and the code that starts daemons is
 * not even loaded); otherwise the queen and this machine's hive are started as needed
 * (`startMissingDaemons`).
 */
export async function ensureLocalCluster(
  client: QueenClient,
  config: Pick<CliConfig, "queenUrl" | "cacheDir">,
  narrator: Narrator,
): Promise<void> {
  // one request: a queen on this machine must know a hive too, one elsewhere must only answer
  if (isLoopbackUrl(config.queenUrl) ? ((await client.hiveCountIfUp()) ?? 0) > 0 : await client.isUp()) return;
  const { startMissingDaemons } = await import("./local-cluster.js");
  await startMissingDaemons(client, config, narrator);
}
