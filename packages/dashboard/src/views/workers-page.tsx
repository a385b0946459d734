import type { CatalogListing, ClusterWorker, ClusterWorkerTypes, JobOperation } from "@rbee/contract";
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api";
import { cluster, useCluster } from "../cluster-store";
import { duration } from "../format";
import { ErrorNote, JobLog, StatusPill } from "../ui";
import { useJob } from "../use-job";

function SpawnForm() {
  const { hives } = useCluster();
  const [types, setTypes] = useState<ClusterWorkerTypes>();
  const [catalogIds, setCatalogIds] = useState<string[]>([]);
  const [model, setModel] = useState("");
  const [type, setType] = useState("");
  const [hive, setHive] = useState("");
  const [device, setDevice] = useState("");
  const [replicas, setReplicas] = useState("");
  const [keepAlive, setKeepAlive] = useState("");
  const job = useJob((e) => {
    if (e.type === "done") void cluster.refresh();
  });
  useEffect(() => {
    api<ClusterWorkerTypes>("/v1/worker-types").then(setTypes, () => undefined);
    api<CatalogListing>("/v1/catalog").then(
      (c) => setCatalogIds([...new Set(c.models.filter((m) => m.status === "Available").map((m) => m.id))].sort()),
      () => undefined,
    );
  }, []);
  const devices = hives.find((h) => h.id === hive)?.devices ?? [];
  return (
    <section class="card" aria-labelledby="spawn-title">
      <h2 id="spawn-title">Spawn a worker</h2>
      <form
        class="grid-form"
        onSubmit={(e) => {
          e.preventDefault();
          const op: JobOperation = { type: "spawn_worker", model: model.trim() };
          if (type) op.worker_type = type;
          if (hive) op.hive = hive;
          if (device) op.device = device as typeof op.device;
          if (replicas) op.replicas = Number(replicas);
          if (keepAlive.trim())
            op.keep_alive = /^-?\d+(\.\d+)?$/.test(keepAlive.trim()) ? Number(keepAlive) : keepAlive;
          void job.start(op);
        }}
      >
        <label>
          <span class="label">Model</span>
          <input
            name="model"
            list="catalog-models"
            required
            value={model}
            placeholder="a catalog id or a GGUF path"
            onInput={(e) => setModel(e.currentTarget.value)}
          />
          <datalist id="catalog-models">
            {catalogIds.map((id) => (
              <option key={id} value={id} />
            ))}
          </datalist>
        </label>
        <label>
          <span class="label">Worker type</span>
          <select name="worker-type" value={type} onChange={(e) => setType(e.currentTarget.value)}>
            <option value="">default{types ? ` (${types.default_type})` : ""}</option>
            {types?.types.map((t) => (
              <option key={t.id} value={t.id} disabled={t.available_on.length === 0}>
                {t.id} — {t.capabilities.join(", ")}
              </option>
            ))}
          </select>
        </label>
        <label>
          <span class="label">Hive</span>
          <select
            name="hive"
            value={hive}
            onChange={(e) => {
              setHive(e.currentTarget.value);
              setDevice("");
            }}
          >
            <option value="">placement chooses</option>
            {hives.map((h) => (
              <option key={h.id} value={h.id}>
                {h.id} ({h.state})
              </option>
            ))}
          </select>
        </label>
        <label>
          <span class="label">Device</span>
          <select name="device" value={device} disabled={!hive} onChange={(e) => setDevice(e.currentTarget.value)}>
            <option value="">placement chooses</option>
            {devices.map((d) => (
              <option key={d.id} value={d.id}>
                {d.id} — {d.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          <span class="label">Replicas (kept)</span>
          <input
            name="replicas"
            type="number"
            min={0}
            max={64}
            value={replicas}
            placeholder="one, not kept"
            onInput={(e) => setReplicas(e.currentTarget.value)}
          />
        </label>
        <label>
          <span class="label">Keep-alive</span>
          <input
            name="keep-alive"
            value={keepAlive}
            placeholder="until stopped (or 5m, 1h)"
            onInput={(e) => setKeepAlive(e.currentTarget.value)}
          />
        </label>
        <div class="actions">
          <button type="submit" class="primary" disabled={job.running || !model.trim()}>
            {job.running ? "Spawning…" : "Spawn"}
          </button>
          {job.running ? (
            <button type="button" onClick={() => void job.cancel()}>
              Cancel
            </button>
          ) : null}
        </div>
      </form>
      <ErrorNote error={job.error} />
      {job.events.length > 0 ? (
        <div data-testid="spawn-log">
          <JobLog events={job.events} />
        </div>
      ) : null}
    </section>
  );
}

/** The last lines of a worker's log, through the queen (`GET /v1/workers/{id}/logs?tail=N`), every 2 s. */
function LogTail({ worker }: { worker: ClusterWorker }) {
  const [text, setText] = useState<string>();
  const [error, setError] = useState<unknown>();
  const pre = useRef<HTMLPreElement>(null);
  useEffect(() => {
    let stopped = false;
    const load = async () => {
      try {
        const t = await api<string>(`/v1/workers/${encodeURIComponent(worker.worker_id)}/logs?tail=200`);
        if (stopped) return;
        setText(typeof t === "string" ? t : JSON.stringify(t));
        setError(undefined);
      } catch (err) {
        if (!stopped) setError(err);
      }
    };
    void load();
    const timer = setInterval(load, 2000);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [worker.worker_id]);
  useEffect(() => {
    const el = pre.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [text]);
  return (
    <div class="logtail">
      <ErrorNote error={error} />
      {/* biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling log must be reachable by keyboard */}
      <pre ref={pre} tabIndex={0} role="log" aria-label={`log of ${worker.worker_id}`}>
        {text === undefined ? "loading…" : text || "(empty)"}
      </pre>
    </div>
  );
}

function WorkerCard({ w }: { w: ClusterWorker }) {
  const [showLog, setShowLog] = useState(false);
  const [action, setAction] = useState<"drain" | "stop">();
  const stop = useJob((e) => {
    if (e.type === "done") void cluster.refresh();
  });
  return (
    <li class="card worker" data-worker-id={w.worker_id}>
      <div class="row between wrap">
        <div>
          <strong class="mono">{w.worker_id}</strong> <StatusPill status={w.status} />
          {w.draining || (stop.running && action === "drain") ? <span class="pill s-stopping">draining</span> : null}
          <div class="muted">
            {w.model} · {w.worker_type} · {w.hive_id}/{w.device} · pid {w.pid ?? "–"} · keep-alive{" "}
            {w.keep_alive_ms === null ? "forever" : duration(w.keep_alive_ms)}
          </div>
        </div>
        <div class="row">
          <button type="button" aria-expanded={showLog} onClick={() => setShowLog(!showLog)}>
            {showLog ? "Hide log" : "Log"}
          </button>
          <button
            type="button"
            title="take no new requests, finish those in flight, then stop"
            disabled={stop.running || w.status === "Stopping"}
            onClick={() => {
              setAction("drain");
              void stop.start({ type: "stop_worker", worker_id: w.worker_id, drain: true });
            }}
          >
            {stop.running && action === "drain" ? "Draining…" : "Drain"}
          </button>
          <button
            type="button"
            class="danger"
            disabled={stop.running || w.status === "Stopping"}
            onClick={() => {
              setAction("stop");
              void stop.start({ type: "stop_worker", worker_id: w.worker_id });
            }}
          >
            {stop.running && action === "stop" ? "Stopping…" : "Stop"}
          </button>
        </div>
      </div>
      <ErrorNote error={stop.error} />
      {stop.end?.type === "error" ? <ErrorNote error={stop.end.message} /> : null}
      {stop.running && stop.events.length > 0 ? <JobLog events={stop.events} /> : null}
      {showLog ? <LogTail worker={w} /> : null}
    </li>
  );
}

export function WorkersPage() {
  const { workers } = useCluster();
  return (
    <>
      <h1>Workers</h1>
      <SpawnForm />
      <section aria-labelledby="running-title">
        <h2 id="running-title">Running</h2>
        {workers.length === 0 ? (
          <p class="muted empty">No workers.</p>
        ) : (
          <ul class="plain">
            {workers.slice(0, 200).map((w) => (
              <WorkerCard key={w.worker_id} w={w} />
            ))}
          </ul>
        )}
        {workers.length > 200 ? (
          <p class="muted">The first 200 of {workers.length} workers; the Cluster view lists them all.</p>
        ) : null}
      </section>
    </>
  );
}
