import type { ClusterEvent, ClusterHive, ClusterSnapshot, ClusterWorker } from "@rbee/contract";
import { useEffect, useState } from "preact/hooks";
import { ApiError, api, onAuthNeeded, parseJson, readSse } from "./api";
import { ago, duration } from "./format";

export type Connection = "connecting" | "live" | "disconnected" | "auth";

export interface ClusterView {
  connection: Connection;
  /** Why the page is not live, as the API or the network said it. */
  problem: string | undefined;
  queen: ClusterSnapshot["queen"] | undefined;
  hives: readonly ClusterHive[];
  workers: readonly ClusterWorker[];
  minimums: NonNullable<ClusterSnapshot["minimums"]>;
  /** When the last snapshot or event arrived (ms since the epoch). */
  updatedAt: number;
}

/**
 * Figures that move on every heartbeat are compared as the page shows them ("4.2 s", "3 min"), so
 * that a row whose text would not change keeps its object and skips rendering.
 */
const AS_SHOWN: Record<string, (a: number, b: number) => boolean> = {
  idle_ms: (a, b) => duration(a) === duration(b),
  last_seen_ms: (a, b) => ago(a) === ago(b),
};

/** Same field values (one level deep, nested objects by JSON): lets unchanged rows skip rendering. */
function sameShallow(a: object, b: object): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) {
    const va = (a as Record<string, unknown>)[k];
    const vb = (b as Record<string, unknown>)[k];
    if (va === vb) continue;
    const shown = AS_SHOWN[k];
    if (shown && typeof va === "number" && typeof vb === "number" && shown(va, vb)) continue;
    if (typeof va !== "object" || typeof vb !== "object" || va === null || vb === null) return false;
    if (JSON.stringify(va) !== JSON.stringify(vb)) return false;
  }
  return true;
}

/** The idle and load figures move every heartbeat; rows re-render only when something a person sees changed. */
function keepIdentity<T extends object>(old: T | undefined, next: T): T {
  return old !== undefined && sameShallow(old, next) ? old : next;
}

/**
 * The cluster as the page knows it: a snapshot from `/v1/events`, then one change per event, and a
 * fresh `/v1/cluster` every few seconds for the figures that move without an event (load, tokens/s,
 * idle time, device memory). Reconnects by itself when the queen goes away.
 */
export class ClusterStore {
  #view: ClusterView = {
    connection: "connecting",
    problem: undefined,
    queen: undefined,
    hives: [],
    workers: [],
    minimums: [],
    updatedAt: 0,
  };
  #workers = new Map<string, ClusterWorker>();
  #hives = new Map<string, ClusterHive>();
  #listeners = new Set<() => void>();
  #notifyQueued = false;
  #abort: AbortController | undefined;
  #refreshTimer: ReturnType<typeof setInterval> | undefined;
  #refreshSoon: ReturnType<typeof setTimeout> | undefined;
  #started = false;
  readonly refreshMs: number;

  constructor(refreshMs = 5000) {
    this.refreshMs = refreshMs;
  }

  get view(): ClusterView {
    return this.#view;
  }

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    onAuthNeeded((needed) => {
      if (!needed && this.#view.connection === "auth") this.#reconnectNow();
    });
    void this.#run();
    this.#refreshTimer = setInterval(() => {
      if (this.#view.connection === "live" && document.visibilityState === "visible") void this.refresh();
    }, this.refreshMs);
  }

  stop(): void {
    this.#abort?.abort();
    if (this.#refreshTimer) clearInterval(this.#refreshTimer);
    this.#started = false;
  }

  /** Fetches `/v1/cluster` now (after an action that changes it). */
  async refresh(): Promise<void> {
    try {
      this.#applySnapshot(await api<ClusterSnapshot>("/v1/cluster"));
    } catch {
      // the events stream says when the queen is gone
    }
  }

  #set(patch: Partial<ClusterView>): void {
    this.#view = { ...this.#view, ...patch };
    if (this.#notifyQueued) return;
    this.#notifyQueued = true;
    queueMicrotask(() => {
      this.#notifyQueued = false;
      for (const l of this.#listeners) l();
    });
  }

  #publish(): void {
    this.#set({
      hives: [...this.#hives.values()].sort((a, b) => a.id.localeCompare(b.id)),
      // by hive, then id: a stable order, whatever order the events came in
      workers: [...this.#workers.values()].sort((a, b) =>
        a.hive_id === b.hive_id ? a.worker_id.localeCompare(b.worker_id) : a.hive_id.localeCompare(b.hive_id),
      ),
      updatedAt: Date.now(),
    });
  }

  #applySnapshot(s: ClusterSnapshot): void {
    const hives = new Map<string, ClusterHive>();
    for (const h of s.hives) hives.set(h.id, keepIdentity(this.#hives.get(h.id), h));
    const workers = new Map<string, ClusterWorker>();
    for (const w of s.workers) workers.set(w.worker_id, keepIdentity(this.#workers.get(w.worker_id), w));
    this.#hives = hives;
    this.#workers = workers;
    this.#set({ queen: s.queen, minimums: s.minimums ?? [] });
    this.#publish();
  }

  /** One event of `/v1/events`. */
  apply(e: ClusterEvent): void {
    switch (e.type) {
      case "snapshot":
        this.#applySnapshot(e.cluster);
        return;
      case "hive_joined":
        this.#scheduleRefresh();
        return;
      case "hive_state": {
        const h = this.#hives.get(e.hive_id);
        if (h) this.#hives.set(h.id, { ...h, state: e.state });
        else this.#scheduleRefresh();
        for (const w of this.#workers.values())
          if (w.hive_id === e.hive_id)
            this.#workers.set(w.worker_id, { ...w, routable: this.#routable(w.hive_id, w.status) });
        break;
      }
      case "worker_added":
        this.#workers.set(e.worker.worker_id, e.worker);
        break;
      case "worker_status": {
        const w = this.#workers.get(e.worker_id);
        if (w)
          this.#workers.set(w.worker_id, { ...w, status: e.status, routable: this.#routable(w.hive_id, e.status) });
        // a crash or a restart changes restarts and last exit too, which only the snapshot carries
        if (!w || (e.status !== "Ready" && e.status !== "Busy") || e.from === "Starting") this.#scheduleRefresh();
        break;
      }
      case "worker_removed":
        this.#workers.delete(e.worker_id);
        break;
      case "worker_draining": {
        const w = this.#workers.get(e.worker_id);
        if (w && e.draining) this.#workers.set(w.worker_id, { ...w, draining: true, routable: false });
        // taken back into service: whether it is routable again, the snapshot says
        if (!e.draining) this.#scheduleRefresh();
        break;
      }
      case "worker_stopping": {
        const w = this.#workers.get(e.worker_id);
        if (w && e.stopping) this.#workers.set(w.worker_id, { ...w, stopping: true, routable: false });
        if (!e.stopping) this.#scheduleRefresh();
        break;
      }
      case "hive_stopping": {
        const h = this.#hives.get(e.hive_id);
        if (h) this.#hives.set(h.id, { ...h, stopping: e.stopping || undefined });
        for (const w of this.#workers.values())
          if (w.hive_id === e.hive_id)
            this.#workers.set(w.worker_id, { ...w, routable: this.#routable(w.hive_id, w.status) });
        break;
      }
      case "hive_catalog": {
        const h = this.#hives.get(e.hive_id);
        if (h) this.#hives.set(h.id, { ...h, models: e.models });
        break;
      }
    }
    this.#publish();
  }

  /** As the queen decides it (registry.isRoutable), for a change the event does not carry. */
  #routable(hiveId: string, status: ClusterWorker["status"]): boolean {
    const hive = this.#hives.get(hiveId);
    return (
      (status === "Ready" || status === "Busy") && (hive === undefined || (hive.state === "live" && !hive.stopping))
    );
  }

  #scheduleRefresh(): void {
    if (this.#refreshSoon) return;
    this.#refreshSoon = setTimeout(() => {
      this.#refreshSoon = undefined;
      void this.refresh();
    }, 250);
  }

  #wake: (() => void) | undefined;

  #reconnectNow(): void {
    this.#wake?.();
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (this.#started) {
      this.#abort = new AbortController();
      this.#set({ connection: this.#view.connection === "live" ? "disconnected" : this.#view.connection });
      try {
        await readSse(
          "/v1/events",
          (m) => {
            const e = parseJson<ClusterEvent>(m.data);
            if (!e) return;
            if (e.type === "snapshot") {
              failures = 0;
              this.#set({ connection: "live", problem: undefined });
            }
            this.apply(e);
          },
          { signal: this.#abort.signal },
        );
        this.#set({ connection: "disconnected", problem: "the queen closed the event stream" });
      } catch (err) {
        if (!this.#started) return;
        if (err instanceof ApiError && err.status === 401) {
          this.#set({ connection: "auth", problem: err.message });
          await new Promise<void>((resolve) => {
            this.#wake = resolve;
          });
          continue;
        }
        this.#set({ connection: "disconnected", problem: (err as Error).message });
      }
      failures++;
      // 0.5 s, 1 s, 2 s, then every 3 s: a queen that comes back is seen within seconds
      const wait = Math.min(3000, 250 * 2 ** Math.min(failures, 4));
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        setTimeout(resolve, wait);
      });
    }
  }
}

export const cluster = new ClusterStore();

/** The cluster view, re-rendering the component on every change. */
export function useCluster(): ClusterView {
  const [view, setView] = useState(cluster.view);
  useEffect(() => {
    setView(cluster.view);
    return cluster.subscribe(() => setView(cluster.view));
  }, []);
  return view;
}
