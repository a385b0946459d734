import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { apiKey, onAuthNeeded, setApiKey } from "./api";
import { cluster, useCluster } from "./cluster-store";
import { time } from "./format";
import { ClusterPage } from "./views/cluster-page";
import { JobsPage } from "./views/jobs-page";
import { KeysPage } from "./views/keys-page";
import { ModelsPage } from "./views/models-page";
import { PackagesPage } from "./views/packages-page";
import { PlaygroundPage } from "./views/playground-page";
import { WorkersPage } from "./views/workers-page";

const PAGES = [
  { id: "cluster", title: "Cluster", view: ClusterPage },
  { id: "models", title: "Models", view: ModelsPage },
  { id: "workers", title: "Workers", view: WorkersPage },
  { id: "packages", title: "Packages", view: PackagesPage },
  { id: "jobs", title: "Jobs", view: JobsPage },
  { id: "playground", title: "Playground", view: PlaygroundPage },
  { id: "keys", title: "Keys", view: KeysPage },
] as const;
type PageId = (typeof PAGES)[number]["id"];

function currentPage(): PageId {
  const id = location.hash.replace(/^#\/?/, "").split("/")[0] ?? "";
  return PAGES.some((p) => p.id === id) ? (id as PageId) : "cluster";
}

function ConnectionBadge() {
  const { connection } = useCluster();
  const label = { live: "live", connecting: "connecting…", disconnected: "disconnected", auth: "needs a key" }[
    connection
  ];
  return (
    <span class={`badge conn-${connection}`} role="status" data-connection={connection}>
      <span class="dot" aria-hidden="true" /> {label}
    </span>
  );
}

/** Asks for an API key when the queen wants one; the key stays in this tab's sessionStorage. */
function KeyPrompt({ onDone }: { onDone?: () => void }) {
  const [value, setValue] = useState("");
  const refused = apiKey() !== null;
  return (
    <section class="card key-prompt" aria-labelledby="key-prompt-title">
      <h2 id="key-prompt-title">This queen wants an API key</h2>
      <p class="muted">
        {refused
          ? "The key this tab kept was refused. Paste another one."
          : "API keys exist on this queen, so every request needs one."}{" "}
        It is kept in this browser tab only (sessionStorage) and sent as <code>Authorization: Bearer</code>. Create one
        with <code>rbee key create</code>.
      </p>
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          if (!value.trim()) return;
          setApiKey(value.trim());
          setValue("");
          onDone?.();
        }}
      >
        <label class="grow">
          <span class="label">API key</span>
          <input
            type="password"
            name="api-key"
            autoComplete="off"
            placeholder="rbee_sk_…"
            value={value}
            onInput={(e) => setValue(e.currentTarget.value)}
          />
        </label>
        <button type="submit" class="primary">
          Use this key
        </button>
      </form>
    </section>
  );
}

function Disconnected() {
  const { connection, problem, updatedAt } = useCluster();
  if (connection !== "disconnected") return null;
  return (
    <div class="banner warn" role="alert">
      <strong>Disconnected from the queen.</strong> Reconnecting by itself… {problem ? <span>({problem})</span> : null}
      {updatedAt ? <span class="muted"> What is shown is as of {time(updatedAt)}.</span> : null}
    </div>
  );
}

function Shell({ page, children }: { page: PageId; children: ComponentChildren }) {
  const [hasKey, setHasKey] = useState(apiKey() !== null);
  const { connection } = useCluster();
  useEffect(() => onAuthNeeded(() => setHasKey(apiKey() !== null)), []);
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <div class="brand">
          <span class="logo" aria-hidden="true">
            ●
          </span>
          rbee
        </div>
        <nav aria-label="Views">
          {PAGES.map((p) => (
            <a key={p.id} href={`#/${p.id}`} aria-current={p.id === page ? "page" : undefined}>
              {p.title}
            </a>
          ))}
        </nav>
        <div class="top-right">
          <ConnectionBadge />
          {hasKey ? (
            <button type="button" class="link" onClick={() => setApiKey(null)}>
              Forget key
            </button>
          ) : null}
        </div>
      </header>
      <main id="main" class={connection === "disconnected" ? "stale" : undefined}>
        <Disconnected />
        {children}
      </main>
    </>
  );
}

export function App() {
  const [page, setPage] = useState<PageId>(currentPage());
  const { connection } = useCluster();
  useEffect(() => {
    cluster.start();
    const onHash = () => setPage(currentPage());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  useEffect(() => {
    const title = PAGES.find((p) => p.id === page)?.title ?? "";
    document.title = `${title} · rbee`;
  }, [page]);
  const View = PAGES.find((p) => p.id === page)?.view ?? ClusterPage;
  return <Shell page={page}>{connection === "auth" ? <KeyPrompt /> : <View />}</Shell>;
}
