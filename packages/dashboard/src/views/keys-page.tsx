import type { ApiKeyInfo } from "@rbee/contract";
import { useCallback, useEffect, useState } from "preact/hooks";
import { api, apiKey, setApiKey } from "../api";
import { ErrorNote } from "../ui";

type CreatedKey = ApiKeyInfo & { key: string; admin?: boolean };

export function KeysPage() {
  const [keys, setKeys] = useState<Array<ApiKeyInfo & { admin?: boolean }>>();
  const [error, setError] = useState<unknown>();
  const [name, setName] = useState("");
  // the first key is an admin by default: otherwise nobody could manage keys from this page afterwards
  const [adminChoice, setAdmin] = useState<boolean>();
  const admin = adminChoice ?? (keys === undefined || keys.length === 0);
  const [created, setCreated] = useState<CreatedKey>();
  const [busy, setBusy] = useState(false);
  const load = useCallback(async () => {
    try {
      const r = await api<{ keys: Array<ApiKeyInfo & { admin?: boolean }> }>("/v1/keys");
      setKeys(r.keys);
      setError(undefined);
    } catch (err) {
      setError(err);
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);
  const inUse = apiKey();
  return (
    <>
      <h1>API keys</h1>
      <p class="muted">
        While no key exists the queen's API is open, on this machine only. Once one exists, every request wants one:
        OpenAI clients send it as their <code>apiKey</code>. An admin key can also create and revoke keys. Each key is
        shown once, here, when it is created.
      </p>
      <section class="card" aria-labelledby="create-key-title">
        <h2 id="create-key-title">Create a key</h2>
        <form
          class="row wrap"
          onSubmit={async (e) => {
            e.preventDefault();
            setBusy(true);
            try {
              const k = await api<CreatedKey>("/v1/keys", {
                method: "POST",
                body: { name: name.trim() || "dashboard", admin },
              });
              setCreated(k);
              setName("");
              setError(undefined);
              // the first key closes the API: this tab has no key yet, so show the list as it now is
              if (apiKey() === null) setKeys((list) => [...(list ?? []), k]);
              else await load();
            } catch (err) {
              setError(err);
            } finally {
              setBusy(false);
            }
          }}
        >
          <label class="grow">
            <span class="label">Name</span>
            <input
              name="key-name"
              value={name}
              maxLength={64}
              placeholder="laptop"
              onInput={(e) => setName(e.currentTarget.value)}
            />
          </label>
          <label class="check">
            <input type="checkbox" checked={admin} onChange={(e) => setAdmin(e.currentTarget.checked)} /> admin (can
            manage keys)
          </label>
          <button type="submit" class="primary" disabled={busy}>
            Create key
          </button>
        </form>
        {created ? (
          <div class="created" role="status" data-testid="created-key">
            <p>
              <strong>Key “{created.name}” created.</strong> Copy it now: it is not shown again.
            </p>
            <code class="secret" data-testid="secret">
              {created.key}
            </code>
            {apiKey() === null ? (
              <p class="muted">From now on the queen wants a key on every request, from this page too.</p>
            ) : null}
            <div class="row center">
              <button type="button" onClick={() => void navigator.clipboard?.writeText(created.key)}>
                Copy
              </button>
              <button
                type="button"
                onClick={() => {
                  setApiKey(created.key);
                  setCreated(undefined);
                }}
              >
                Use it in this tab
              </button>
              <button type="button" class="link" onClick={() => setCreated(undefined)}>
                I saved it
              </button>
            </div>
          </div>
        ) : null}
      </section>
      <section aria-labelledby="keys-title">
        <h2 id="keys-title">Keys</h2>
        <ErrorNote error={error} />
        {keys === undefined || error ? null : keys.length === 0 ? (
          <p class="muted empty">No API keys: the API is open on this machine.</p>
        ) : (
          <div class="table-wrap">
            <table>
              <caption class="sr-only">API keys</caption>
              <thead>
                <tr>
                  <th scope="col">name</th>
                  <th scope="col">starts with</th>
                  <th scope="col">created</th>
                  <th scope="col">admin</th>
                  <th scope="col">
                    <span class="sr-only">actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {keys.map((k) => (
                  <tr key={k.id} data-key-id={k.id}>
                    <th scope="row">{k.name}</th>
                    <td class="mono">
                      {k.prefix}…{inUse?.startsWith(k.prefix) ? <span class="tag">this tab</span> : null}
                    </td>
                    <td>{new Date(k.created_at).toLocaleString()}</td>
                    <td>{k.admin ? "yes" : "no"}</td>
                    <td>
                      <button
                        type="button"
                        class="danger"
                        onClick={async () => {
                          if (!confirm(`Revoke key “${k.name}”? Clients using it are refused from now on.`)) return;
                          try {
                            await api(`/v1/keys/${encodeURIComponent(k.id)}`, { method: "DELETE" });
                            await load();
                          } catch (err) {
                            setError(err);
                          }
                        }}
                      >
                        Revoke
                      </button>
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
