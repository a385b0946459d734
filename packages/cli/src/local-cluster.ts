import { DEFAULT_PORTS } from "@rbee/contract/light";
import { envInt, envString, tlsFilesFrom } from "@rbee/server-kit/client";
import { type CliConfig, isLoopbackUrl, urlPort } from "./config.js";
import {
  type DaemonName,
  type DaemonRecord,
  daemonFiles,
  freePort,
  liveDaemon,
  localUrl,
  probeHealth,
  startInBackground,
  stopDaemon,
} from "./daemons.js";
import { CliError, EXIT } from "./exit-codes.js";
import type { QueenClient } from "./queen-client.js";
import type { Narrator } from "./render/narration.js";

/**
 * The queen and the hive of this machine, as `rbee up`, `rbee queen|hive start` and the
 * "works from nothing" start of `rbee infer` run them: where they listen, starting them in the
 * background unless they already run, and waiting until the queen knows the hive.
 */
export interface Listen {
  host: string;
  port: number;
  /** Where it is reached from this machine. */
  url: string;
  /** The certificate and key given as flags (passed on to a background daemon; RBEE_TLS_* are inherited). */
  tls?: { cert: string; key: string };
}

export interface ListenFlags {
  port?: number;
  host?: string;
  tlsCert?: string;
  tlsKey?: string;
}

/** HTTPS when a certificate is given (flag or RBEE_TLS_CERT); the daemon checks that the key is there too. */
function tlsOf(flags: ListenFlags): { secure: boolean; tls?: { cert: string; key: string } } {
  const files = tlsFilesFrom(flags);
  const given = flags.tlsCert !== undefined || flags.tlsKey !== undefined;
  return {
    secure: files !== undefined,
    tls: files && given ? { cert: files.certFile, key: files.keyFile } : undefined,
  };
}

/**
 * Where a local queen listens: --port, else RBEE_QUEEN_PORT, else the port of the queen URL when
 * that URL is on this machine (so that `rbee infer` starts the queen where it then looks for it),
 * else 7833. Host: --host, else RBEE_QUEEN_HOST, else 127.0.0.1.
 */
export function queenListen(config: Pick<CliConfig, "queenUrl">, flags: ListenFlags = {}): Listen {
  const fromUrl = isLoopbackUrl(config.queenUrl) ? urlPort(config.queenUrl) : DEFAULT_PORTS.queen;
  const port = flags.port ?? envInt("RBEE_QUEEN_PORT", fromUrl, 0);
  const host = flags.host ?? envString("RBEE_QUEEN_HOST", "127.0.0.1");
  const { secure, tls } = tlsOf(flags);
  return { host, port, url: localUrl(host, port, secure), tls };
}

/** Where the local hive listens: --port, else RBEE_HIVE_PORT, else 7835; host likewise (RBEE_HIVE_HOST). */
export function hiveListen(flags: ListenFlags = {}): Listen {
  const port = flags.port ?? envInt("RBEE_HIVE_PORT", DEFAULT_PORTS.hive, 0);
  const host = flags.host ?? envString("RBEE_HIVE_HOST", "127.0.0.1");
  const { secure, tls } = tlsOf(flags);
  return { host, port, url: localUrl(host, port, secure), tls };
}

/** Replaces port 0 by a port that is free now: the CLI must know where to wait for /health. */
export async function concretePort(listen: Listen): Promise<Listen> {
  if (listen.port !== 0) return listen;
  const port = await freePort(listen.host === "0.0.0.0" || listen.host === "::" ? undefined : listen.host);
  return { ...listen, port, url: localUrl(listen.host, port, listen.url.startsWith("https:")) };
}

export interface Started {
  record: DaemonRecord;
  /** False when it was running already. */
  started: boolean;
  /** True when something answers at the URL that this rbee did not start (no pid file). */
  foreign: boolean;
}

async function startDaemon(
  config: Pick<CliConfig, "cacheDir">,
  name: DaemonName,
  listen: Listen,
  args: string[],
): Promise<Started> {
  const running = liveDaemon(config.cacheDir, name);
  if (running) {
    if (await probeHealth(running.url || listen.url)) return { record: running, started: false, foreign: false };
    const { logFile } = daemonFiles(config.cacheDir, name);
    throw new CliError(
      `a ${name} process runs (pid ${running.pid}) but does not answer ${running.url || listen.url}/health; look at ${logFile}, or stop it with \`rbee ${name} stop\``,
    );
  }
  const target = await concretePort(listen);
  if (listen.port !== 0 && (await probeHealth(target.url))) {
    return { record: { pid: 0, url: target.url, started_at: "" }, started: false, foreign: true };
  }
  const record = await startInBackground({
    name,
    url: target.url,
    args: [
      name,
      "start",
      "--foreground",
      "--port",
      String(target.port),
      "--host",
      target.host,
      ...(listen.tls ? ["--tls-cert", listen.tls.cert, "--tls-key", listen.tls.key] : []),
      ...args,
    ],
    cacheDir: config.cacheDir,
  });
  return { record, started: true, foreign: false };
}

/** Starts the queen in the background unless it runs. */
export function startQueenDaemon(config: Pick<CliConfig, "cacheDir">, listen: Listen): Promise<Started> {
  return startDaemon(config, "queen", listen, []);
}

/** Starts the hive in the background, pointed at `queenUrl`, unless it runs. */
export function startHiveDaemon(
  config: Pick<CliConfig, "cacheDir">,
  listen: Listen,
  queenUrl: string,
  hiveId?: string,
  advertiseUrl?: string,
): Promise<Started> {
  return startDaemon(config, "hive", listen, [
    "--queen-url",
    queenUrl,
    ...(hiveId ? ["--hive-id", hiveId] : []),
    ...(advertiseUrl ? ["--advertise-url", advertiseUrl] : []),
  ]);
}

/**
 * Starts the queen and this machine's hive at the same time (each unless it runs): the hive retries
 * its first heartbeat until the queen answers, so neither waits for the other to start. When the
 * queen fails, a hive started here is stopped again and the queen's error is thrown.
 */
export async function startQueenAndHive(
  config: Pick<CliConfig, "queenUrl" | "cacheDir">,
): Promise<{ queen: Started; hive: Started }> {
  const [queen, hive] = await Promise.allSettled([
    startQueenDaemon(config, queenListen(config)),
    startHiveDaemon(config, hiveListen(), config.queenUrl),
  ]);
  if (queen.status === "rejected") {
    if (hive.status === "fulfilled" && hive.value.started)
      await stopDaemon(config.cacheDir, "hive", 5000).catch(() => {});
    throw queen.reason;
  }
  if (hive.status === "rejected") throw hive.reason;
  return { queen: queen.value, hive: hive.value };
}

/**
 * Waits until the queen lists a live hive listening on `hivePort` (its first heartbeat arrived),
 * so that what follows (a job, `rbee status`) sees it.
 */
export async function waitForHive(client: QueenClient, hivePort: number, timeoutMs = 20_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const hive = (await client.hives()).find((h) => h.state === "live" && safePort(h.url) === hivePort);
    if (hive) return hive.id;
    if (Date.now() > deadline) {
      throw new CliError(
        `the hive on port ${hivePort} runs but the queen at ${client.url} has not heard from it within ${timeoutMs / 1000} s; look at the hive's log (rbee hive status)`,
      );
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

function safePort(url: string): number | undefined {
  try {
    return urlPort(url);
  } catch {
    return undefined;
  }
}

/**
 * The start path of "works from nothing" (`ensureLocalCluster` in ensure-cluster.ts, which imports
 * this module only when something may have to start): when the queen cannot be reached and its URL
 * is on this machine, start the queen and a hive in the background; when the queen runs on this
 * machine but knows no hive, start this machine's hive. Anything else is left alone.
 */
export async function startMissingDaemons(
  client: QueenClient,
  config: Pick<CliConfig, "queenUrl" | "cacheDir">,
  narrator: Narrator,
): Promise<void> {
  const local = isLoopbackUrl(config.queenUrl);
  if (await client.isUp()) {
    if (!local) return;
    if ((await client.hiveCount()) > 0) return;
    narrator.say("rbee: starting hive");
    const hive = await startHiveDaemon(config, hiveListen(), config.queenUrl);
    await waitForHive(client, urlPort(hive.record.url));
    return;
  }
  if (!local) await client.health(); // throws the "cannot reach the queen" error, exit 3
  narrator.say("rbee: starting queen");
  narrator.say("rbee: starting hive");
  const { queen, hive } = await startQueenAndHive(config);
  if (urlPort(queen.record.url) !== urlPort(config.queenUrl)) {
    throw new CliError(
      `started a queen at ${queen.record.url}, but the queen URL is ${config.queenUrl}: make RBEE_QUEEN_PORT and the queen URL agree`,
      EXIT.usage,
    );
  }
  await waitForHive(client, urlPort(hive.record.url));
}
