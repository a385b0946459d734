import type { ClusterHive, ClusterWorker } from "@rbee/contract";
import { memo } from "preact/compat";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { useCluster } from "../cluster-store";
import { ago, count, duration } from "../format";
import { MemoryBar, StatusPill } from "../ui";

function rbeeMemory(workers: readonly ClusterWorker[], hiveId: string, deviceId: string): number {
  let sum = 0;
  for (const w of workers) {
    if (w.hive_id === hiveId && w.device === deviceId) sum += w.memory_bytes ?? w.vram_used;
  }
  return sum;
}

const NONE: readonly ClusterWorker[] = [];

function sameItems<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** A hive, its devices and their memory; re-rendered only when the hive or one of its workers changed. */
const HiveCard = memo(
  function HiveCard({ hive, workers: mine }: { hive: ClusterHive; workers: readonly ClusterWorker[] }) {
    return (
      <article class="card hive" data-hive-id={hive.id} aria-labelledby={`hive-${hive.id}`}>
        <header class="row between">
          <h3 id={`hive-${hive.id}`}>{hive.id}</h3>
          <StatusPill status={hive.state} />
        </header>
        <dl class="facts">
          <div>
            <dt>version</dt>
            <dd>{hive.version}</dd>
          </div>
          <div>
            <dt>last heartbeat</dt>
            <dd>{ago(hive.last_seen_ms)}</dd>
          </div>
          <div>
            <dt>workers</dt>
            <dd>{mine.length}</dd>
          </div>
          <div>
            <dt>models</dt>
            <dd>{hive.models.length}</dd>
          </div>
        </dl>
        <ul class="devices">
          {hive.devices.map((d) => (
            <li key={d.id}>
              <div class="row between">
                <span>
                  <strong>{d.id}</strong> <span class="muted">{d.name}</span>
                  {d.simulated ? <span class="muted"> (simulated)</span> : null}
                </span>
              </div>
              <MemoryBar
                label={`${hive.id} ${d.id}`}
                total={d.memory_total}
                used={d.memory_used}
                rbee={rbeeMemory(mine, hive.id, d.id)}
              />
            </li>
          ))}
        </ul>
      </article>
    );
  },
  (a, b) => a.hive === b.hive && sameItems(a.workers, b.workers),
);

/** One worker's row; skipped by the renderer while the worker object is the same one. */
const WorkerRow = memo(function WorkerRow({ w }: { w: ClusterWorker }) {
  const keepAlive = w.keep_alive_ms === null ? "forever" : duration(w.keep_alive_ms);
  const idle = w.in_flight > 0 || w.status === "Busy" ? "busy" : duration(w.idle_ms);
  return (
    <tr data-worker-id={w.worker_id} data-status={w.status}>
      <th scope="row">
        <span class="mono">{w.worker_id}</span>
        {w.draining ? <span class="pill s-stopping">draining</span> : null}
        <div class="muted small">{w.model}</div>
      </th>
      <td data-label="where">
        {w.hive_id} · {w.device}
        <div class="muted small">{w.worker_type}</div>
      </td>
      <td data-label="status">
        <StatusPill status={w.status} />
        {w.routable || w.status !== "Ready" ? null : <div class="muted small">not routed to</div>}
      </td>
      <td data-label="load" class="num">
        {w.in_flight}/{w.slots}
      </td>
      <td data-label="tok/s" class="num">
        {w.tokens_per_second ? w.tokens_per_second.toFixed(1) : "–"}
      </td>
      <td data-label="requests" class="num">
        {count(w.requests_total)}
      </td>
      <td data-label="idle / keep-alive">
        <span>
          {idle} <span class="muted">/ {keepAlive}</span>
        </span>
      </td>
      <td data-label="restarts" class="num">
        {w.restarts}
      </td>
      <td data-label="last exit" class="wrap-cell">
        {w.last_exit ? w.last_exit.reason : <span class="muted">–</span>}
      </td>
    </tr>
  );
});

/** Above this many workers only the rows in view are rendered (a scrolling window over the table). */
const WINDOW_FROM = 150;
const OVERSCAN = 12;

/**
 * The rows to render: all of them for a small cluster; for a large one, those in the scroll
 * container's view (rows have one height, measured from the first one rendered), with spacers
 * above and below so that the scrollbar stays true.
 */
function useRowWindow(count: number) {
  const box = useRef<HTMLElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [rowHeight, setRowHeight] = useState(48);
  const [viewHeight, setViewHeight] = useState(700);
  const windowed = count > WINDOW_FROM;
  useEffect(() => {
    const el = box.current;
    if (!el || !windowed) return;
    const onScroll = () => setScrollTop(el.scrollTop);
    const measure = () => {
      setViewHeight(el.clientHeight);
      const row = el.querySelector<HTMLElement>("tbody tr[data-worker-id]");
      if (row && row.offsetHeight > 0) setRowHeight(row.offsetHeight);
    };
    measure();
    el.addEventListener("scroll", onScroll, { passive: true });
    addEventListener("resize", measure);
    return () => {
      el.removeEventListener("scroll", onScroll);
      removeEventListener("resize", measure);
    };
  }, [windowed]);
  if (!windowed) return { box, windowed, start: 0, end: count, before: 0, after: 0 };
  const start = Math.max(0, Math.floor(scrollTop / rowHeight) - OVERSCAN);
  const end = Math.min(count, Math.ceil((scrollTop + viewHeight) / rowHeight) + OVERSCAN);
  return { box, windowed, start, end, before: start * rowHeight, after: (count - end) * rowHeight };
}

export function WorkerTable({ workers, caption }: { workers: readonly ClusterWorker[]; caption: string }) {
  const win = useRowWindow(workers.length);
  if (workers.length === 0) return <p class="muted empty">No workers yet. Spawn one under Workers.</p>;
  return (
    <section
      class={`table-wrap${win.windowed ? " windowed" : ""}`}
      ref={win.box}
      aria-label={caption}
      // a scrolling region must be reachable by keyboard
      tabIndex={win.windowed ? 0 : undefined}
    >
      <table class="workers stack">
        <caption class="sr-only">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">worker / model</th>
            <th scope="col">hive · device / type</th>
            <th scope="col">status</th>
            <th scope="col" title="requests in flight / parallel slots">
              load
            </th>
            <th scope="col">tok/s</th>
            <th scope="col">requests</th>
            <th scope="col" title="idle time / keep-alive">
              idle / keep-alive
            </th>
            <th scope="col">restarts</th>
            <th scope="col">last exit</th>
          </tr>
        </thead>
        <tbody>
          {win.before > 0 ? <tr class="spacer" style={{ height: `${win.before}px` }} /> : null}
          {workers.slice(win.start, win.end).map((w) => (
            <WorkerRow key={w.worker_id} w={w} />
          ))}
          {win.after > 0 ? <tr class="spacer" style={{ height: `${win.after}px` }} /> : null}
        </tbody>
      </table>
    </section>
  );
}

/** A large cluster shows this many hive cards until asked for all (the worker table lists every worker). */
const HIVES_SHOWN = 24;

export function ClusterPage() {
  const view = useCluster();
  const [allHives, setAllHives] = useState(false);
  const { hives, workers, queen, minimums } = view;
  const byHive = useMemo(() => {
    const map = new Map<string, ClusterWorker[]>();
    for (const w of workers) {
      const list = map.get(w.hive_id);
      if (list) list.push(w);
      else map.set(w.hive_id, [w]);
    }
    return map;
  }, [workers]);
  const ready = workers.filter((w) => w.status === "Ready" || w.status === "Busy").length;
  return (
    <>
      <h1>Cluster</h1>
      <p class="summary" data-testid="cluster-summary">
        {view.connection === "connecting" && !queen ? (
          "Connecting to the queen…"
        ) : (
          <>
            <strong>{hives.length}</strong> {hives.length === 1 ? "hive" : "hives"} ·{" "}
            <strong data-testid="worker-count">{workers.length}</strong> {workers.length === 1 ? "worker" : "workers"} (
            {ready} serving) · queen {queen?.version ?? "?"}
          </>
        )}
      </p>
      {minimums.length > 0 ? (
        <p class="muted">
          Kept minimums:{" "}
          {minimums.map((m) => (
            <span key={m.model} class="tag">
              {m.model} {m.running}/{m.replicas}
            </span>
          ))}
        </p>
      ) : null}
      <section aria-labelledby="hives-title">
        <h2 id="hives-title">Hives</h2>
        {hives.length === 0 ? (
          <p class="muted empty">
            No hive has joined yet. Start one with <code>rbee hive start</code> (or <code>rbee up</code>).
          </p>
        ) : (
          <>
            <div class="grid">
              {(allHives ? hives : hives.slice(0, HIVES_SHOWN)).map((h) => (
                <HiveCard key={h.id} hive={h} workers={byHive.get(h.id) ?? NONE} />
              ))}
            </div>
            {hives.length > HIVES_SHOWN ? (
              <button type="button" class="link more" onClick={() => setAllHives(!allHives)}>
                {allHives ? `Show the first ${HIVES_SHOWN} hives` : `Show all ${hives.length} hives`}
              </button>
            ) : null}
          </>
        )}
      </section>
      <section aria-labelledby="workers-title">
        <h2 id="workers-title">Workers</h2>
        <WorkerTable workers={workers} caption="Workers of the cluster" />
      </section>
    </>
  );
}
