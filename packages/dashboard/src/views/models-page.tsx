import type { CatalogListing, ClusterHive, ModelInspection } from "@rbee/contract";
import { useCallback, useEffect, useState } from "preact/hooks";
import { api } from "../api";
import { cluster, useCluster } from "../cluster-store";
import { bytes, params } from "../format";
import { ErrorNote, JobLog, StatusPill } from "../ui";
import { useJob } from "../use-job";

type CatalogModel = CatalogListing["models"][number];

interface HeldModel {
  id: string;
  name: string;
  size: number;
  quantization: string | undefined;
  parameters: number | undefined;
  architecture: string | undefined;
  held: Array<{ hive: string; status: string; downloaded?: number }>;
}

function groupCatalog(models: readonly CatalogModel[]): HeldModel[] {
  const byId = new Map<string, HeldModel>();
  for (const m of models) {
    let entry = byId.get(m.id);
    if (!entry) {
      entry = {
        id: m.id,
        name: m.name,
        size: m.size_bytes,
        quantization: m.gguf?.quantization,
        parameters: m.gguf?.parameter_count,
        architecture: m.gguf?.architecture,
        held: [],
      };
      byId.set(m.id, entry);
    }
    entry.held.push({ hive: m.hive_id, status: m.status, downloaded: m.downloaded_bytes });
  }
  return [...byId.values()].sort((a, b) => a.id.localeCompare(b.id));
}

type Inspection = ModelInspection & { hive_id: string };

/** Where a model would fit now: each live hive's devices against the estimate for their kind. */
function fits(info: Inspection, hives: readonly ClusterHive[]) {
  const rows: Array<{ hive: string; device: string; need: number; free: number; fits: boolean }> = [];
  for (const h of hives) {
    if (h.state !== "live") continue;
    for (const d of h.devices) {
      const need = d.kind === "cpu" ? info.estimate.total : (info.gpu_estimate ?? info.estimate).total;
      rows.push({ hive: h.id, device: d.id, need, free: d.memory_free, fits: d.memory_free >= need });
    }
  }
  return rows;
}

function AddModel({ onAdded }: { onAdded: () => void }) {
  const { hives } = useCluster();
  const [ref, setRef] = useState("");
  const [hive, setHive] = useState("");
  const check = useJob();
  const download = useJob();
  const info = check.end?.type === "done" ? (check.end.result as Inspection) : undefined;
  const downloading = download.running;
  const stopped = download.end?.type === "cancelled" || download.end?.type === "error";
  const target = hive || undefined;
  const startDownload = () =>
    void download.start({ type: "download_model", model: ref.trim(), hive: target }).then((end) => {
      if (end?.type === "done") onAdded();
    });
  return (
    <section class="card" aria-labelledby="add-model-title">
      <h2 id="add-model-title">Add a model</h2>
      <p class="muted">
        Paste a Hugging Face reference: <code>owner/repo</code> (the hive picks a quantization) or{" "}
        <code>owner/repo:file.gguf</code>. The fit check reads only the GGUF header, before any download.
      </p>
      <form
        class="row wrap"
        onSubmit={(e) => {
          e.preventDefault();
          if (!ref.trim()) return;
          download.reset();
          void check.start({ type: "model_info", model: ref.trim(), hive: target });
        }}
      >
        <label class="grow">
          <span class="label">Hugging Face reference</span>
          <input
            name="model-ref"
            value={ref}
            placeholder="bartowski/Llama-3.2-1B-Instruct-GGUF:Llama-3.2-1B-Instruct-Q4_K_M.gguf"
            onInput={(e) => setRef(e.currentTarget.value)}
          />
        </label>
        <label>
          <span class="label">Hive</span>
          <select value={hive} onChange={(e) => setHive(e.currentTarget.value)}>
            <option value="">any live hive</option>
            {hives.map((h) => (
              <option key={h.id} value={h.id}>
                {h.id}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" disabled={check.running || !ref.trim()}>
          {check.running ? "Checking…" : "Check fit"}
        </button>
      </form>
      <ErrorNote error={check.error} />
      {check.events.length > 0 && !info ? <JobLog events={check.events} /> : null}
      {info ? (
        <div class="fit" data-testid="fit-check">
          <h3>
            {info.model_id} <span class="muted">{info.picked ? `(${info.picked})` : null}</span>
          </h3>
          <dl class="facts">
            <div>
              <dt>architecture</dt>
              <dd>{info.gguf.architecture}</dd>
            </div>
            <div>
              <dt>parameters</dt>
              <dd>{params(info.gguf.parameter_count)}</dd>
            </div>
            <div>
              <dt>quantization</dt>
              <dd>{info.gguf.quantization}</dd>
            </div>
            <div>
              <dt>file</dt>
              <dd>{bytes(info.files.reduce((s, f) => s + f.size_bytes, 0))}</dd>
            </div>
            <div>
              <dt>needs (CPU)</dt>
              <dd>
                {bytes(info.estimate.total)}{" "}
                <span class="muted">
                  at {info.estimate.context_size} ctx × {info.estimate.parallel}
                </span>
              </dd>
            </div>
            {info.gpu_estimate ? (
              <div>
                <dt>needs (GPU)</dt>
                <dd>{bytes(info.gpu_estimate.total)}</dd>
              </div>
            ) : null}
            <div>
              <dt>header read</dt>
              <dd>{bytes(info.bytes_fetched)}</dd>
            </div>
          </dl>
          <div class="table-wrap">
            <table>
              <caption class="sr-only">Where it fits</caption>
              <thead>
                <tr>
                  <th scope="col">hive</th>
                  <th scope="col">device</th>
                  <th scope="col">needs</th>
                  <th scope="col">free</th>
                  <th scope="col">fits</th>
                </tr>
              </thead>
              <tbody>
                {fits(info, hives).map((r) => (
                  <tr key={`${r.hive}/${r.device}`}>
                    <td>{r.hive}</td>
                    <td>{r.device}</td>
                    <td>{bytes(r.need)}</td>
                    <td>{bytes(r.free)}</td>
                    <td>{r.fits ? <span class="ok">fits</span> : <span class="bad">too large</span>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {info.model ? (
            <p class="muted">Already in the catalog of hive {info.hive_id}.</p>
          ) : download.end?.type === "done" ? (
            <p class="ok-note" role="status">
              Added: <strong>{info.model_id}</strong> is in the catalog. Spawn a worker for it under Workers, or chat
              with it in the Playground (a worker starts on the first request).
            </p>
          ) : (
            <div class="row spaced">
              {downloading ? (
                <button type="button" onClick={() => void download.cancel()}>
                  Cancel download
                </button>
              ) : (
                <button type="button" class="primary" onClick={startDownload}>
                  {stopped ? "Resume download" : "Download"}
                </button>
              )}
            </div>
          )}
          <ErrorNote error={download.error} />
          {download.events.length > 0 ? (
            <div data-testid="download-log">
              <JobLog events={download.events} />
            </div>
          ) : null}
        </div>
      ) : null}
    </section>
  );
}

/** Removes a model from every hive that holds it (refused, with the reason, while a worker serves it). */
function RemoveModel({ id, onRemoved }: { id: string; onRemoved: () => void }) {
  const job = useJob((e) => {
    if (e.type === "done") onRemoved();
  });
  const failed = job.end?.type === "error" ? job.end.message : job.error;
  return (
    <div class="remove">
      <button
        type="button"
        class="danger"
        disabled={job.running}
        aria-label={`Remove ${id}`}
        onClick={() => {
          if (confirm(`Remove ${id} from every hive that holds it? Its files are deleted.`))
            void job.start({ type: "remove_model", model: id });
        }}
      >
        {job.running ? "Removing…" : "Remove"}
      </button>
      <ErrorNote error={failed} />
    </div>
  );
}

export function ModelsPage() {
  const [models, setModels] = useState<HeldModel[]>();
  const [error, setError] = useState<unknown>();
  const { hives } = useCluster();
  const load = useCallback(async () => {
    try {
      const listing = await api<CatalogListing>("/v1/catalog");
      setModels(groupCatalog(listing.models));
      setError(undefined);
    } catch (err) {
      setError(err);
    }
  }, []);
  // the catalog rides on the hives' heartbeats: reload when they change
  useEffect(() => {
    void load();
  }, [hives, load]);
  return (
    <>
      <h1>Models</h1>
      <AddModel
        onAdded={() => {
          void cluster.refresh();
          void load();
        }}
      />
      <section aria-labelledby="catalog-title">
        <h2 id="catalog-title">Catalog</h2>
        <ErrorNote error={error} />
        {models === undefined ? (
          <p class="muted">Loading…</p>
        ) : models.length === 0 ? (
          <p class="muted empty">No model in any hive's catalog yet. Add one above.</p>
        ) : (
          <div class="table-wrap">
            <table>
              <caption class="sr-only">Models held by the hives</caption>
              <thead>
                <tr>
                  <th scope="col">model</th>
                  <th scope="col">size</th>
                  <th scope="col">quantization</th>
                  <th scope="col">parameters</th>
                  <th scope="col">held by</th>
                  <th scope="col">
                    <span class="sr-only">actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {models.map((m) => (
                  <tr key={m.id} data-model-id={m.id}>
                    <th scope="row">
                      {m.id} <span class="muted">{m.architecture}</span>
                    </th>
                    <td>{bytes(m.size)}</td>
                    <td>{m.quantization ?? "–"}</td>
                    <td>{params(m.parameters)}</td>
                    <td>
                      {m.held.map((h) => (
                        <span key={h.hive} class="tag">
                          {h.hive} {h.status === "Available" ? null : <StatusPill status={h.status} />}
                          {h.status === "Downloading" && h.downloaded !== undefined ? ` ${bytes(h.downloaded)}` : null}
                        </span>
                      ))}
                    </td>
                    <td>
                      <RemoveModel
                        id={m.id}
                        onRemoved={() => {
                          void cluster.refresh();
                          void load();
                        }}
                      />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </>
  );
}
