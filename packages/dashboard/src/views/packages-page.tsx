import type {
  JobOperation,
  PackageInstallation,
  QueenWorkerPackage,
  QueenWorkerPackageDetail,
  QueenWorkerPackageList,
} from "@rbee/contract";
import { useCallback, useEffect, useState } from "preact/hooks";
import { api } from "../api";
import { cluster, useCluster } from "../cluster-store";
import { bytes, time } from "../format";
import { ErrorNote, JobLog, StatusPill } from "../ui";
import { type JobRun, useJob } from "../use-job";

/** The marketplace's categories (the contract's WorkerCategory; the page imports no zod). */
const CATEGORIES = ["llm", "image", "audio", "embeddings", "adapter"] as const;

/** `#/packages/<id>`: the package whose details are open. */
function hashPackage(): string | undefined {
  const [, id] = location.hash.replace(/^#\/?/, "").split("/");
  return id ? decodeURIComponent(id) : undefined;
}

function useHashPackage(): string | undefined {
  const [id, setId] = useState(hashPackage());
  useEffect(() => {
    const onHash = () => setId(hashPackage());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  return id;
}

function Stars({ rating, count }: { rating: number | null; count?: number }) {
  if (rating === null) return <span class="muted">no ratings</span>;
  const n = Math.round(rating);
  return (
    <span class="stars">
      <span aria-hidden="true">{"★".repeat(n) + "☆".repeat(5 - n)}</span> {rating.toFixed(1)}
      {count === undefined ? null : ` (${count})`}
    </span>
  );
}

/** Where a package is installed: one tag per hive, with its version and an update it could take. */
function Installed({ installed }: { installed: readonly PackageInstallation[] }) {
  if (installed.length === 0) return <span class="muted">not installed</span>;
  return (
    <>
      {installed.map((i) => (
        <span key={i.hive_id} class="tag" data-installed-on={i.hive_id}>
          {i.hive_id} {i.version}
          {i.update_available ? <span class="pill s-starting">update {i.update_available}</span> : null}
        </span>
      ))}
    </>
  );
}

/** What a finished package job did, in a line. */
function outcome(op: JobOperation | undefined, result: unknown): string {
  if (!op) return "";
  if (op.type === "install_worker_package") {
    const r = result as {
      id: string;
      hives: Array<{ hive_id: string; version: string; unchanged?: boolean; trust?: string }>;
    };
    return r.hives
      .map(
        (h) =>
          `${r.id}@${h.version} ${h.unchanged ? "was already installed" : "installed"} on ${h.hive_id} (${h.trust === "verified" ? "signature verified" : "unsigned, allowed"})`,
      )
      .join("; ");
  }
  if (op.type === "uninstall_worker_package") {
    const r = result as { hives: Array<{ hive_id: string; version: string }> };
    return r.hives.map((h) => `${op.id}@${h.version} removed from ${h.hive_id}`).join("; ");
  }
  if (op.type === "update_worker_package") {
    const r = result as { updates: Array<{ hive_id: string; id: string; from: string; to?: string; outcome: string }> };
    return r.updates
      .map(
        (u) =>
          `${u.id} on ${u.hive_id}: ${u.outcome === "updated" ? `${u.from} → ${u.to}` : `${u.from}, ${u.outcome}`}`,
      )
      .join("; ");
  }
  return "";
}

function InstallForm({
  pkg,
  job,
  start,
}: {
  pkg: QueenWorkerPackageDetail;
  job: JobRun;
  start: (op: JobOperation) => void;
}) {
  const { hives } = useCluster();
  const versions = [...pkg.versions].map((v) => v.version);
  const [version, setVersion] = useState("");
  const [hive, setHive] = useState("");
  const [allowUnsigned, setAllowUnsigned] = useState(false);
  const [autoUpdate, setAutoUpdate] = useState(false);
  const chosen = version || pkg.latest_version;
  const artifacts = pkg.versions.find((v) => v.version === chosen)?.artifacts ?? [];
  const unsigned = artifacts.length > 0 && artifacts.every((a) => !a.signature);
  const live = hives.filter((h) => h.state === "live");
  return (
    <form
      class="grid-form"
      aria-label={`Install ${pkg.id}`}
      onSubmit={(e) => {
        e.preventDefault();
        const op: JobOperation = { type: "install_worker_package", id: pkg.id, catalogs: [pkg.catalog] };
        if (version) op.version = version;
        if (hive) op.hive = hive;
        if (allowUnsigned) op.allow_unsigned = true;
        if (autoUpdate) op.auto_update = true;
        start(op);
      }}
    >
      <label>
        <span class="label">Version</span>
        <select name="version" value={version} onChange={(e) => setVersion(e.currentTarget.value)}>
          <option value="">newest ({pkg.latest_version})</option>
          {versions.map((v) => (
            <option key={v} value={v}>
              {v}
            </option>
          ))}
        </select>
      </label>
      <label>
        <span class="label">Install on</span>
        <select name="install-hive" value={hive} onChange={(e) => setHive(e.currentTarget.value)}>
          <option value="">every live hive ({live.length})</option>
          {hives.map((h) => (
            <option key={h.id} value={h.id} disabled={h.state !== "live"}>
              {h.id} ({h.state})
            </option>
          ))}
        </select>
      </label>
      <label class="check">
        <input type="checkbox" checked={autoUpdate} onChange={(e) => setAutoUpdate(e.currentTarget.checked)} /> Keep it
        up to date (within its major version)
      </label>
      <label class="check">
        <input
          type="checkbox"
          name="allow-unsigned"
          checked={allowUnsigned}
          onChange={(e) => setAllowUnsigned(e.currentTarget.checked)}
        />{" "}
        Allow unsigned
      </label>
      <div class="actions">
        <button type="submit" class={allowUnsigned ? "danger" : "primary"} disabled={job.running}>
          {job.running ? "Working…" : allowUnsigned ? "Install unverified" : "Install"}
        </button>
      </div>
      {allowUnsigned ? (
        <p class="banner warn span-all" role="alert" data-testid="unsigned-warning">
          <strong>Unverified install.</strong> The hives will install {pkg.id} even if it is unsigned or signed by a key
          they do not trust: nothing then shows that its code is what its publisher released, and it runs with your
          hives' rights. Only for a package you have checked yourself. A signature that does not verify is refused
          anyway.
        </p>
      ) : unsigned ? (
        <p class="muted span-all">
          Version {chosen} is unsigned: the hives refuse it unless <em>Allow unsigned</em> is ticked.
        </p>
      ) : null}
    </form>
  );
}

/** Changes when a hive joins, leaves or changes state: what is installed where may have changed. */
function useHivesKey(): string {
  const { hives } = useCluster();
  return hives.map((h) => `${h.id}:${h.state}`).join(",");
}

function PackageDetail({ id, onChanged }: { id: string; onChanged: () => void }) {
  const [pkg, setPkg] = useState<QueenWorkerPackageDetail>();
  const [error, setError] = useState<unknown>();
  const [op, setOp] = useState<JobOperation>();
  const load = useCallback(async () => {
    try {
      setPkg(await api<QueenWorkerPackageDetail>(`/v1/worker-packages/${encodeURIComponent(id)}`));
      setError(undefined);
    } catch (err) {
      setPkg(undefined);
      setError(err);
    }
  }, [id]);
  const job = useJob();
  const hivesKey = useHivesKey();
  useEffect(() => {
    job.reset();
  }, [id]);
  useEffect(() => {
    if (hivesKey !== undefined) void load();
  }, [load, hivesKey]);
  const start = (o: JobOperation) => {
    setOp(o);
    void job.start(o).then(() => {
      void cluster.refresh();
      void load();
      onChanged();
    });
  };
  const end = job.end;
  return (
    <section class="card" aria-labelledby="package-title" data-package-id={id}>
      <div class="row between wrap">
        <h2 id="package-title">{id}</h2>
        <a href="#/packages">Close</a>
      </div>
      <ErrorNote error={error} />
      {pkg === undefined ? (
        error ? null : (
          <p class="muted">Loading…</p>
        )
      ) : (
        <>
          <p>{pkg.description}</p>
          <dl class="facts">
            <div>
              <dt>latest</dt>
              <dd>{pkg.latest_version}</dd>
            </div>
            <div>
              <dt>category</dt>
              <dd>{pkg.category}</dd>
            </div>
            <div>
              <dt>serves</dt>
              <dd>{pkg.capabilities.join(", ")}</dd>
            </div>
            <div>
              <dt>devices</dt>
              <dd>{pkg.device_kinds.join(", ")}</dd>
            </div>
            <div>
              <dt>platforms</dt>
              <dd>{pkg.platforms.join(", ")}</dd>
            </div>
            <div>
              <dt>rating</dt>
              <dd>
                <Stars rating={pkg.rating} count={pkg.review_count} />
              </dd>
            </div>
            <div>
              <dt>publisher</dt>
              <dd>{pkg.publisher}</dd>
            </div>
            <div>
              <dt>catalog</dt>
              <dd class="mono">{pkg.catalog}</dd>
            </div>
          </dl>

          <h3>Installed</h3>
          {pkg.installed.length === 0 ? (
            <p class="muted">On no hive yet.</p>
          ) : (
            <div class="table-wrap">
              <table data-testid="installed">
                <caption class="sr-only">Hives that have {pkg.id}</caption>
                <thead>
                  <tr>
                    <th scope="col">hive</th>
                    <th scope="col">version</th>
                    <th scope="col">trust</th>
                    <th scope="col">status</th>
                    <th scope="col">update</th>
                    <th scope="col">
                      <span class="sr-only">actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {pkg.installed.map((i) => (
                    <tr key={i.hive_id} data-hive-id={i.hive_id}>
                      <th scope="row">
                        {i.hive_id} {i.hive_state === "live" ? null : <StatusPill status={i.hive_state} />}
                      </th>
                      <td>
                        {i.version}
                        {i.auto_update ? <span class="muted"> (auto-update)</span> : null}
                      </td>
                      <td>
                        {i.trust === "verified" ? "signature verified" : <span class="bad">unsigned, allowed</span>}
                      </td>
                      <td>{i.status === "Available" ? <StatusPill status="Available" /> : i.status}</td>
                      <td>{i.update_available ?? <span class="muted">up to date</span>}</td>
                      <td class="row">
                        {i.update_available ? (
                          <button
                            type="button"
                            disabled={job.running}
                            aria-label={`Update to ${i.update_available} on ${i.hive_id}`}
                            onClick={() => start({ type: "update_worker_package", id: pkg.id, hive: i.hive_id })}
                          >
                            Update to {i.update_available}
                          </button>
                        ) : null}
                        <button
                          type="button"
                          class="danger"
                          disabled={job.running}
                          aria-label={`Uninstall ${pkg.id} from ${i.hive_id}`}
                          onClick={() => {
                            if (
                              confirm(`Uninstall ${pkg.id} from ${i.hive_id}? Refused while workers of it run there.`)
                            )
                              start({ type: "uninstall_worker_package", id: pkg.id, hive: i.hive_id });
                          }}
                        >
                          Uninstall
                        </button>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}

          <h3>Install</h3>
          <InstallForm pkg={pkg} job={job} start={start} />
          <div data-testid="package-job" aria-live="polite">
            <ErrorNote error={job.error} />
            {end?.type === "error" ? <ErrorNote error={end.message} /> : null}
            {end?.type === "done" ? (
              <p class="ok-note" role="status">
                {outcome(op, end.result)}
              </p>
            ) : null}
            {end?.type === "cancelled" ? <p class="muted">Cancelled.</p> : null}
            {job.running ? (
              <button type="button" onClick={() => void job.cancel()}>
                Cancel
              </button>
            ) : null}
            {job.events.length > 0 ? <JobLog events={job.events} /> : null}
          </div>

          <h3>Versions</h3>
          {/* biome-ignore lint/a11y/noNoninteractiveTabindex: a table that scrolls sideways (phone width) must be reachable by keyboard */}
          <section class="table-wrap" tabIndex={0} aria-label={`Versions of ${pkg.id}`}>
            <table data-testid="versions">
              <caption class="sr-only">Versions of {pkg.id} and their artifacts</caption>
              <thead>
                <tr>
                  <th scope="col">version</th>
                  <th scope="col">published</th>
                  <th scope="col">platform</th>
                  <th scope="col">size</th>
                  <th scope="col">sha256</th>
                  <th scope="col">signed by</th>
                </tr>
              </thead>
              <tbody>
                {pkg.versions.flatMap((v) =>
                  v.artifacts.map((a) => (
                    <tr key={`${v.version}/${a.platform}`}>
                      <td>{v.version}</td>
                      <td>{new Date(v.published_at).toLocaleDateString()}</td>
                      <td>{a.platform}</td>
                      <td>{bytes(a.size_bytes)}</td>
                      <td class="mono" title={a.sha256}>
                        {a.sha256.slice(0, 16)}…
                      </td>
                      <td class="mono" title={a.public_key}>
                        {a.signature && a.public_key ? `${a.public_key.slice(0, 20)}…` : "unsigned"}
                      </td>
                    </tr>
                  )),
                )}
              </tbody>
            </table>
          </section>

          <h3>Reviews</h3>
          {pkg.reviews.length === 0 ? <p class="muted">No reviews yet.</p> : null}
          <ul class="plain">
            {pkg.reviews.map((r) => (
              <li key={r.user} class="review">
                <Stars rating={r.stars} /> <strong>{r.user}</strong> <span class="muted">{time(r.updated_at)}</span>
                <p>{r.text}</p>
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}

/**
 * Worker packages: the queen's catalog servers, browsed through the queen (`GET /v1/worker-packages`),
 * and installed, updated and removed as queen jobs.
 */
export function PackagesPage() {
  const selected = useHashPackage();
  const [category, setCategory] = useState("");
  const [search, setSearch] = useState("");
  const [query, setQuery] = useState("");
  const [list, setList] = useState<QueenWorkerPackageList>();
  const [error, setError] = useState<unknown>();
  const load = useCallback(async () => {
    const q = new URLSearchParams();
    if (category) q.set("category", category);
    if (query) q.set("q", query);
    try {
      setList(await api<QueenWorkerPackageList>(`/v1/worker-packages${q.size ? `?${q}` : ""}`));
      setError(undefined);
    } catch (err) {
      setError(err);
    }
  }, [category, query]);
  const hivesKey = useHivesKey();
  useEffect(() => {
    if (hivesKey !== undefined) void load();
  }, [load, hivesKey]);
  useEffect(() => {
    const t = setTimeout(() => setQuery(search.trim()), 200);
    return () => clearTimeout(t);
  }, [search]);
  const down = list?.catalogs.filter((c) => !c.ok) ?? [];
  return (
    <>
      <h1>Worker packages</h1>
      <p class="muted">
        Worker types published to the catalog servers this queen lists (<code>RBEE_CATALOG_URLS</code>
        {list ? `: ${list.catalogs.map((c) => c.url).join(", ")}` : ""}). Installs are verified on every hive: sha256
        and the publisher's signature.
      </p>
      {down.length > 0 ? (
        <div class="banner warn" data-testid="catalog-problems">
          {down.map((c) => (
            <p key={c.url}>
              <strong>Catalog {c.url} did not answer</strong>: {c.error}. Packages of the other catalogs are listed.
            </p>
          ))}
        </div>
      ) : null}
      {selected ? <PackageDetail id={selected} onChanged={() => void load()} /> : null}
      <section aria-labelledby="packages-title">
        <h2 id="packages-title">Browse</h2>
        <div class="row wrap">
          <fieldset class="chips">
            <legend class="sr-only">Category</legend>
            {["", ...CATEGORIES].map((c) => (
              <button key={c} type="button" class="chip" aria-pressed={c === category} onClick={() => setCategory(c)}>
                {c || "all"}
              </button>
            ))}
          </fieldset>
          <label class="grow">
            <span class="label">Search packages</span>
            <input
              type="search"
              name="package-search"
              value={search}
              placeholder="words in the id or description"
              onInput={(e) => setSearch(e.currentTarget.value)}
            />
          </label>
          <button type="button" onClick={() => void load()}>
            Refresh
          </button>
        </div>
        <ErrorNote error={error} />
        {list === undefined ? (
          error ? null : (
            <p class="muted">Loading…</p>
          )
        ) : list.packages.length === 0 ? (
          <p class="muted empty">No worker package matches.</p>
        ) : (
          <div class="table-wrap">
            <table data-testid="packages">
              <caption class="sr-only">Worker packages of the catalogs</caption>
              <thead>
                <tr>
                  <th scope="col">package</th>
                  <th scope="col">version</th>
                  <th scope="col">category</th>
                  <th scope="col">rating</th>
                  <th scope="col">installed</th>
                  <th scope="col">catalog</th>
                </tr>
              </thead>
              <tbody>
                {list.packages.map((p: QueenWorkerPackage) => (
                  <tr
                    key={`${p.catalog}/${p.id}`}
                    data-package-id={p.id}
                    aria-current={p.id === selected ? "true" : undefined}
                  >
                    <th scope="row">
                      <a href={`#/packages/${encodeURIComponent(p.id)}`}>{p.id}</a>
                      <div class="muted small">{p.description}</div>
                    </th>
                    <td>{p.latest_version}</td>
                    <td>{p.category}</td>
                    <td>
                      <Stars rating={p.rating} count={p.review_count} />
                    </td>
                    <td>
                      <Installed installed={p.installed} />
                    </td>
                    <td class="mono small">{p.catalog}</td>
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
