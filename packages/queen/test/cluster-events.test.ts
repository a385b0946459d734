import { join } from "node:path";
import { ClusterEvent } from "@rbee/contract";
import { type Hive, startHive } from "@rbee/hive";
import { type Queen, startQueen } from "@rbee/queen";
import {
  getJson,
  type ParsedSse,
  postJson,
  postSse,
  quietLog,
  requireStoriesModel,
  runJob,
  tempRbeeDirs,
  waitFor,
} from "@rbee/testing";
import { afterEach, describe, expect, it } from "vitest";

/**
 * Draining, stopping and catalog changes on the queen's `GET /v1/events`, as the dashboard and
 * `rbee status --watch` read them: a real queen, a real hive, a real llm worker on stories260K.
 */
const HEARTBEAT_MS = 1000;
const LONG = 60_000;

type Dirs = ReturnType<typeof tempRbeeDirs>;

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

async function queenIn(dirs: Dirs): Promise<Queen> {
  const queen = await startQueen({
    log: quietLog("queen"),
    port: 0,
    configDir: dirs.configDir,
    cacheDir: dirs.cacheDir,
    heartbeatIntervalMs: HEARTBEAT_MS,
    sweepIntervalMs: 200,
  });
  cleanups.push(() => queen.close());
  return queen;
}

async function hiveIn(queen: Queen, dirs: Dirs, hiveId: string): Promise<Hive> {
  const hive = await startHive({
    log: quietLog("hive"),
    port: 0,
    queenUrl: queen.url,
    hiveId,
    configDir: dirs.configDir,
    cacheDir: join(dirs.cacheDir, hiveId),
    heartbeatIntervalMs: HEARTBEAT_MS,
    workerOrphanTimeoutMs: 20_000,
    workerPortStart: 20_000 + Math.floor(Math.random() * 30_000),
    env: { ...process.env, RBEE_DEVICES: "[]" },
  });
  cleanups.push(() => hive.close());
  await waitFor(() => (queen.registry.hives.get(hiveId)?.state === "live" ? true : undefined), LONG);
  return hive;
}

/** Follows the queen's /v1/events; every event is checked against the contract's schema as it comes. */
function follow(queen: Queen) {
  const events: ClusterEvent[] = [];
  const invalid: ParsedSse[] = [];
  let stop = false;
  const stream = postSse(`${queen.url}/v1/events`, undefined, {
    method: "GET",
    onEvent: (e) => {
      const parsed = ClusterEvent.safeParse(e.data);
      if (parsed.success && parsed.data.type === e.event) events.push(parsed.data);
      else invalid.push(e);
      return stop ? "stop" : undefined;
    },
  });
  // the queen's close ends the stream, if no event comes first to stop it
  stream.catch(() => undefined);
  cleanups.push(async () => {
    stop = true;
  });
  return {
    events,
    invalid,
    /** The events after the first snapshot, as `type` plus the fields named. */
    async until<T extends ClusterEvent["type"]>(type: T, match: (e: Extract<ClusterEvent, { type: T }>) => boolean) {
      return waitFor(
        () => events.find((e): e is Extract<ClusterEvent, { type: T }> => e.type === type && match(e as never)),
        LONG,
        `a ${type} event on /v1/events`,
      );
    },
  };
}

const completion = (queen: Queen, body: Record<string, unknown>) =>
  postJson(`${queen.url}/v1/completions`, { prompt: "Once upon a time", max_tokens: 8, temperature: 0, ...body });

/** A queen and one hive, "hive-a", in fresh directories named after `label`. */
async function queenAndHive(label: string): Promise<{ queen: Queen; hive: Hive }> {
  const dirs = tempRbeeDirs(label);
  const queen = await queenIn(dirs);
  return { queen, hive: await hiveIn(queen, dirs, "hive-a") };
}

/** The queen's events, from its snapshot on. */
async function followed(queen: Queen): Promise<ReturnType<typeof follow>> {
  const feed = follow(queen);
  await feed.until("snapshot", () => true);
  return feed;
}

describe("GET /v1/events shows draining, stopping and catalog changes (real queen, hive and worker)", () => {
  it("a worker drained by request: worker_draining, then worker_stopping, then worker_removed", async () => {
    const { queen } = await queenAndHive("events-drain");
    expect((await completion(queen, { model: requireStoriesModel() })).status).toBe(200);
    const [worker] = [...queen.registry.workers.values()];
    const id = worker?.id as string;
    const feed = await followed(queen);

    const job = await runJob(queen.url, { type: "stop_worker", worker_id: id, drain: true });
    expect(job.error).toBeUndefined();
    await feed.until("worker_removed", (e) => e.worker_id === id);

    // (its status on the way, Stopping, may show between them, as its hive reports it)
    const mine = feed.events.filter((e) => "worker_id" in e && e.worker_id === id && e.type !== "worker_status");
    expect(mine.map((e) => e.type)).toEqual(["worker_draining", "worker_stopping", "worker_removed"]);
    expect(mine[0]).toMatchObject({ draining: true, reason: "drained and stopped by request" });
    expect(mine[1]).toMatchObject({ stopping: true, reason: "drained and stopped by request" });
    expect(feed.invalid).toEqual([]);
  });

  it("a drain that is cancelled takes the worker back: worker_draining false, and it serves again", async () => {
    const { queen } = await queenAndHive("events-undrain");
    expect((await completion(queen, { model: requireStoriesModel() })).status).toBe(200);
    const [worker] = [...queen.registry.workers.values()];
    if (worker === undefined) throw new Error("no worker");
    const feed = await followed(queen);

    // a request holds the worker, so the drain waits; cancelling the drain takes the worker back
    const lease = await queen.scheduler.acquire("stories260k", { signal: new AbortController().signal });
    const cancel = new AbortController();
    const drain = queen.scheduler.drainWorker(worker, "a drain the test cancels", cancel.signal);
    await feed.until("worker_draining", (e) => e.worker_id === worker.id && e.draining);
    expect(queen.registry.routableWorkers("stories260k")).toEqual([]);
    cancel.abort(new Error("cancelled by the test"));
    await expect(drain).rejects.toThrow(/cancelled by the test/);
    await feed.until("worker_draining", (e) => e.worker_id === worker.id && !e.draining);
    lease.release();
    expect(queen.registry.routableWorkers("stories260k").map((w) => w.id)).toEqual([worker.id]);
    expect(feed.events.some((e) => e.type === "worker_stopping" || e.type === "worker_removed")).toBe(false);
    expect((await completion(queen, { model: "stories260k" })).status).toBe(200);
  });

  it("a hive that looks for its engines again and finds what it had: its worker catalog is unchanged, no hive_catalog", async () => {
    const { queen, hive } = await queenAndHive("events-catalog-same");
    const feed = await followed(queen);
    const types = async () => {
      const r = await getJson(`${hive.url}/v1/worker-types?refresh=1`, hive.token);
      expect(r.status, r.text).toBe(200);
      return r.body.worker_types as Array<{ id: string; updated_at?: string }>;
    };
    const first = await types();
    await new Promise((r) => setTimeout(r, 20));
    const second = await types();
    // nothing changed, so nothing says it did: not the entries' times, not the queen's events
    expect(second.map((t) => [t.id, t.updated_at])).toEqual(first.map((t) => [t.id, t.updated_at]));
    const since = Date.now();
    await new Promise((r) => setTimeout(r, 3 * HEARTBEAT_MS));
    expect(queen.registry.hives.get("hive-a")?.lastSeen).toBeGreaterThan(since);
    expect(feed.events.filter((e) => e.type === "hive_catalog" && e.at >= since)).toEqual([]);
    expect(feed.invalid).toEqual([]);
  });

  it("a hive that stops gracefully: hive_stopping at once, before it turns stale", async () => {
    const { queen, hive } = await queenAndHive("events-hive-stop");
    expect((await completion(queen, { model: requireStoriesModel() })).status).toBe(200);
    const feed = await followed(queen);

    await hive.close();
    const stopping = await feed.until("hive_stopping", (e) => e.hive_id === "hive-a");
    expect(stopping.stopping).toBe(true);
    // said by its last heartbeat, not by the age of its heartbeats
    expect(feed.events.some((e) => e.type === "hive_state")).toBe(false);
    expect(queen.registry.hives.get("hive-a")?.state).toBe("live");
    expect(feed.invalid).toEqual([]);
  });

  it("a hive's model catalog changing: hive_catalog when a model is added and when it is removed", async () => {
    const { queen, hive } = await queenAndHive("events-catalog");
    const feed = await followed(queen);

    const added = await postJson(`${hive.url}/v1/models`, { ref: requireStoriesModel() }, { token: hive.token });
    expect(added.status, added.text).toBe(200);
    const withIt = await feed.until("hive_catalog", (e) => e.models.some((m) => m.id === "stories260k"));
    expect(withIt.hive_id).toBe("hive-a");
    expect(withIt.worker_types?.some((t) => t.id === "llm")).toBe(true);

    const removed = await runJob(queen.url, { type: "remove_model", model: "stories260k" });
    expect(removed.error).toBeUndefined();
    const without = await feed.until("hive_catalog", (e) => e.at > withIt.at && e.models.length === 0);
    expect(without.hive_id).toBe("hive-a");
    // the heartbeats that follow say the same: no event flips it back
    await new Promise((r) => setTimeout(r, 3 * HEARTBEAT_MS));
    const after = feed.events.filter((e) => e.type === "hive_catalog" && e.at > without.at);
    expect(after).toEqual([]);
    expect(feed.invalid).toEqual([]);
  });
});
