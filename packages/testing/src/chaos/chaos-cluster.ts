import { mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { freePort } from "@rbee/server-kit";
import { runRbee } from "../child.js";
import { HiveGroup, type QueenProcess, startQueenProcess } from "../daemons.js";
import { getJson, postJson, waitFor } from "../http.js";
import { startHubServer } from "../hub-server/hub-server.js";
import type { HubServer } from "../hub-server/hub-types.js";
import { type ForwardedPort, NetworkLink } from "../network-link.js";
import { requireStoriesModel, tempRbeeDirs } from "../paths.js";

/** The environment variable every daemon of a chaos run carries (its workers inherit it), with the run's root as value. */
export const CHAOS_MARKER = "RBEE_CHAOS_RUN";

/** The hub repository downloads come from: copies of stories260K under new names. */
export const HUB_REPO = "chaos/stories";

/** Worker ports forwarded through the link for the hive behind it (restarted workers may move on). */
const LINKED_WORKER_PORTS = 16;

export interface ChaosHive {
  id: string;
  port: number;
  cacheDir: string;
  workerPortStart: number;
  /** The hive behind the cuttable link: the queen reaches it (and its workers) at 127.0.0.2 through it. */
  linked: boolean;
  group: HiveGroup;
}

export interface ChaosClusterOptions {
  heartbeatIntervalMs: number;
  log?: (line: string) => void;
}

/**
 * A real cluster on loopback for the chaos suite: `rbee queen start --foreground` on a fixed port
 * (so that a restarted queen is found at the same address), two hives each as its own process
 * group (a "machine"), the second behind a NetworkLink the suite can cut, and a local Hugging Face
 * Hub (the test hub) the hives download from. Every process carries CHAOS_MARKER in its
 * environment, so that the suite finds any process of the run that nothing knows of.
 */
export class ChaosCluster {
  readonly dirs = tempRbeeDirs("chaos");
  readonly marker = this.dirs.root;
  readonly link = new NetworkLink();
  queen!: QueenProcess;
  queenPort = 0;
  hub!: HubServer;
  hives: ChaosHive[] = [];
  #toQueen!: ForwardedPort;

  constructor(readonly o: ChaosClusterOptions) {}

  get token(): string {
    return this.queen.token;
  }

  get queenUrl(): string {
    return `http://127.0.0.1:${this.queenPort}`;
  }

  #env(): NodeJS.ProcessEnv {
    return {
      RBEE_HEARTBEAT_INTERVAL_MS: String(this.o.heartbeatIntervalMs),
      RBEE_LOG_LEVEL: "info",
      // the hives keep their spare llm worker process, as they do by default (the test suite turns it off)
      RBEE_SPARE_WORKER: "1",
      // an invalid change of a worker's state (a bug) crashes the hive rather than being only logged
      RBEE_STRICT_STATES: "1",
      [CHAOS_MARKER]: this.marker,
    };
  }

  async start(): Promise<void> {
    mkdirSync(this.dirs.configDir, { recursive: true });
    this.hub = await startHubServer({ repos: { [HUB_REPO]: { files: {} } } });
    this.queenPort = await freePort();
    await this.startQueen();
    this.#toQueen = await this.link.forward({ targetPort: this.queenPort });
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    for (const [i, id] of ["chaos-a", "chaos-b"].entries()) {
      const linked = i === 1;
      const port = await freePort();
      const workerPortStart = base + i * 100;
      if (linked) {
        await this.link.forward({ listenHost: "127.0.0.2", listenPort: port, targetPort: port });
        for (let p = workerPortStart; p < workerPortStart + LINKED_WORKER_PORTS; p++)
          await this.link.forward({ listenHost: "127.0.0.2", listenPort: p, targetPort: p });
      }
      const hive: ChaosHive = {
        id,
        port,
        cacheDir: join(this.dirs.root, `cache-${id}`),
        workerPortStart,
        linked,
        group: undefined as unknown as HiveGroup,
      };
      this.hives.push(hive);
      await this.startHive(hive);
    }
    await waitFor(
      async () => ((await this.liveHives()).length === this.hives.length ? true : undefined),
      60_000,
      "both hives live on the queen",
    );
  }

  async startQueen(): Promise<void> {
    this.queen = await startQueenProcess("chaos", this.#env(), [], { port: this.queenPort, dirs: this.dirs });
  }

  /** Starts (or restarts) a hive's process group; resolves when it is ready. */
  async startHive(h: ChaosHive): Promise<void> {
    const queenUrl = h.linked ? this.#toQueen.url : this.queenUrl;
    const args = ["--models-dir", dirname(requireStoriesModel())];
    if (h.linked) args.push("--advertise-url", `http://127.0.0.2:${h.port}`);
    h.group = new HiveGroup(
      h.id,
      h.port,
      {
        ...this.#env(),
        RBEE_CONFIG_DIR: this.dirs.configDir,
        RBEE_CACHE_DIR: h.cacheDir,
        RBEE_QUEEN_URL: queenUrl,
        RBEE_WORKER_PORT_START: String(h.workerPortStart),
        HF_ENDPOINT: this.hub.url,
      },
      args,
    );
    await h.group.ready();
  }

  async liveHives(): Promise<string[]> {
    const c = await getJson<{ hives: Array<{ id: string; state: string }> }>(`${this.queenUrl}/v1/cluster`, this.token);
    return (c.body.hives ?? []).filter((x) => x.state === "live").map((x) => x.id);
  }

  /** Adds the shared model to both hives' catalogs (placement puts new workers only where the file is). */
  async addModelEverywhere(path: string): Promise<string> {
    let id = "";
    for (const h of this.hives) {
      const r = await postJson<{ id: string }>(`${this.hiveUrl(h)}/v1/models`, { ref: path }, { token: this.token });
      if (r.status !== 200) throw new Error(`hive ${h.id} could not add ${path}: ${r.text}`);
      id = r.body.id;
    }
    return id;
  }

  hiveUrl(h: ChaosHive): string {
    return `http://127.0.0.1:${h.port}`;
  }

  /** `rbee hive add` with the real CLI, into the run's hives.conf. */
  async addHivesConfEntry(alias: string, host: string): Promise<void> {
    const r = await runRbee(["hive", "add", alias, "--host", host], { env: this.dirs.env, timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`rbee hive add ${alias} exited ${r.code}: ${r.stderr}`);
  }

  /** Stops everything (hives first, gracefully), and the hub and link. */
  async stop(): Promise<void> {
    this.link.restore();
    await Promise.all(this.hives.map((h) => h.group.stop(40_000)));
    await this.queen?.child.stop(15_000);
    await this.link.close();
    await this.hub?.close();
  }

  /** Removes the run's directories (after stop). */
  clean(): void {
    rmSync(this.dirs.root, { recursive: true, force: true });
  }
}
