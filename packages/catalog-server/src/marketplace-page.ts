/** Text made safe for an HTML attribute's value (in double quotes). */
function attribute(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/**
 * The marketplace: one page served at `/` by the catalog server, that reads the catalog's own API
 * (`/categories`, `/workers`, `/workers/{id}`). Every text from the catalog is set as textContent,
 * never as HTML. With a dashboard URL (the server's `--dashboard-url`, or `?dashboard=` on the page's
 * own address), a package's details link to that rbee dashboard's view of the package: "Install on my
 * cluster".
 */
export function marketplacePage(o: { dashboardUrl?: string | undefined } = {}): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>rbee worker marketplace</title>
<link rel="icon" href="data:,">
<meta name="rbee-dashboard" content="${attribute(o.dashboardUrl ?? "")}">
<style>
  :root { color-scheme: light dark; --accent: #d99a00; --star: #7a4f00; --muted: #555; --line: #8884; }
  @media (prefers-color-scheme: dark) { :root { --star: #f0b429; --muted: #b0b0b0; } }
  body { font: 15px/1.45 system-ui, sans-serif; margin: 0; }
  header { padding: 14px 24px; border-bottom: 1px solid var(--line); display: flex; gap: 16px; align-items: center; flex-wrap: wrap; }
  header h1 { font-size: 18px; margin: 0; }
  header h1 span { color: var(--star); }
  input[type=search] { flex: 1; min-width: 220px; padding: 7px 10px; font: inherit; border: 1px solid var(--line); border-radius: 6px; }
  nav { display: flex; gap: 6px; padding: 10px 24px; flex-wrap: wrap; border-bottom: 1px solid var(--line); }
  nav button { font: inherit; padding: 4px 12px; border-radius: 14px; border: 1px solid var(--line); background: none; cursor: pointer; color: inherit; }
  nav button[aria-pressed=true] { background: var(--accent); color: #000; border-color: var(--accent); }
  main { display: grid; grid-template-columns: minmax(280px, 1fr) minmax(320px, 1.3fr); gap: 0; min-height: 70vh; }
  #list { border-right: 1px solid var(--line); padding: 8px 0; margin: 0; list-style: none; }
  #list li { padding: 10px 24px; cursor: pointer; border-bottom: 1px solid var(--line); }
  #list li:hover, #list li[aria-current=true] { background: #8881; }
  .id { font-weight: 600; }
  .meta { color: var(--muted); font-size: 13px; }
  .stars { color: var(--star); letter-spacing: 1px; }
  #detail { padding: 16px 24px; }
  code, pre { font: 13px ui-monospace, monospace; }
  pre { background: #8881; padding: 8px 10px; border-radius: 6px; overflow-x: auto; }
  table { border-collapse: collapse; font-size: 13px; }
  td, th { text-align: left; padding: 3px 10px 3px 0; vertical-align: top; white-space: nowrap; }
  .empty { color: var(--muted); padding: 24px; }
  .review { border-top: 1px solid var(--line); padding: 6px 0; }
  a.install { display: inline-block; padding: 6px 14px; border-radius: 6px; background: var(--accent); color: #000; text-decoration: none; font-weight: 600; }
</style>
</head>
<body>
<header>
  <h1><span>rbee</span> worker marketplace</h1>
  <input type="search" id="search" placeholder="Search worker types (id or description)" aria-label="Search">
</header>
<nav id="categories" aria-label="Categories"></nav>
<main>
  <ul id="list" aria-label="Worker packages"></ul>
  <section id="detail" aria-live="polite"><p class="empty">Choose a worker package to see its versions, ratings and install command.</p></section>
</main>
<script type="module">
const $ = (s) => document.querySelector(s);
let category = "";
let selected = "";
function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined) e.textContent = String(text); if (cls) e.className = cls; return e; }
function stars(r) { if (r === null || r === undefined) return "no ratings"; const n = Math.round(r); return "★".repeat(n) + "☆".repeat(5 - n) + " " + r.toFixed(1); }
// the rbee dashboard a package can be installed from: ?dashboard=<url> on this page, else the server's --dashboard-url
function dashboardBase() {
  const given = new URLSearchParams(location.search).get("dashboard") || document.querySelector('meta[name="rbee-dashboard"]').content;
  if (!given) return null;
  try {
    const u = new URL(given);
    if (u.protocol !== "http:" && u.protocol !== "https:") return null;
    return u.origin + u.pathname.replace(/[/]+$/, "");
  } catch { return null; }
}
async function get(path) { const res = await fetch(path); if (!res.ok) throw new Error((await res.json()).error?.message ?? res.statusText); return res.json(); }
async function loadCategories() {
  const { categories } = await get("/categories");
  const nav = $("#categories");
  nav.replaceChildren();
  for (const c of [{ id: "", description: "every category", count: null }, ...categories]) {
    const b = el("button", c.id === "" ? "all" : c.id + (c.count ? " (" + c.count + ")" : ""));
    b.title = c.description; b.dataset.category = c.id;
    b.setAttribute("aria-pressed", String(c.id === category));
    b.onclick = () => { category = c.id; for (const x of nav.children) x.setAttribute("aria-pressed", String(x.dataset.category === category)); loadList(); };
    nav.append(b);
  }
}
async function loadList() {
  const q = new URLSearchParams();
  if (category) q.set("category", category);
  const text = $("#search").value.trim();
  if (text) q.set("q", text);
  q.set("per_page", "100");
  const { workers, total } = await get("/workers?" + q);
  const list = $("#list");
  list.replaceChildren();
  list.dataset.total = String(total);
  if (workers.length === 0) list.append(el("li", "No worker package matches.", "empty"));
  for (const w of workers) {
    const li = el("li"); li.dataset.id = w.id; li.setAttribute("aria-current", String(w.id === selected)); li.tabIndex = 0;
    li.append(el("div", w.id, "id"), el("div", w.description), el("div", w.category + " · v" + w.latest_version + " · " + w.device_kinds.join(", ") + " · ", "meta"));
    li.lastChild.append(el("span", stars(w.rating) + (w.review_count ? " (" + w.review_count + ")" : ""), "stars"));
    li.onclick = () => showDetail(w.id);
    li.onkeydown = (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); showDetail(w.id); } };
    list.append(li);
  }
}
async function showDetail(id) {
  selected = id;
  for (const li of $("#list").children) li.setAttribute("aria-current", String(li.dataset.id === id));
  const w = await get("/workers/" + encodeURIComponent(id));
  const d = $("#detail");
  d.replaceChildren();
  d.append(el("h2", w.id), el("p", w.description), el("p", stars(w.rating) + " · " + w.review_count + " review(s) · published by " + w.publisher, "stars"));
  d.append(el("h3", "Install"));
  const pre = el("pre", w.install_command); pre.id = "install-command"; d.append(pre);
  const dashboard = dashboardBase();
  if (dashboard) {
    const p = el("p"); const a = el("a", "Install on my cluster", "install");
    a.id = "install-on-cluster"; a.href = dashboard + "/#/packages/" + encodeURIComponent(w.id);
    p.append(a, el("span", " in the rbee dashboard at " + new URL(dashboard).host, "meta")); d.append(p);
  }
  const t = el("table");
  const rows = [["category", w.category], ["serves", w.capabilities.join(", ")], ["devices", w.device_kinds.join(", ")], ["platforms", w.platforms.join(", ")]];
  for (const [k, v] of rows) { const tr = el("tr"); tr.append(el("th", k), el("td", v)); t.append(tr); }
  d.append(t, el("h3", "Versions"));
  const vt = el("table"); vt.id = "versions";
  for (const v of w.versions) for (const a of v.artifacts) {
    const tr = el("tr"); tr.append(el("td", v.version), el("td", a.platform), el("td", Math.ceil(a.size_bytes / 1024) + " KiB"), el("td")); tr.lastChild.append(el("code", "sha256 " + a.sha256));
    vt.append(tr);
  }
  d.append(vt, el("h3", "Reviews"));
  if (w.reviews.length === 0) d.append(el("p", "No reviews yet.", "meta"));
  for (const r of w.reviews) { const div = el("div", undefined, "review"); div.append(el("span", "★".repeat(r.stars) + "☆".repeat(5 - r.stars), "stars"), el("b", " " + r.user), el("p", r.text)); d.append(div); }
}
let timer;
$("#search").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(loadList, 150); });
await loadCategories();
await loadList();
document.body.dataset.ready = "true";
</script>
</body>
</html>
`;
}
