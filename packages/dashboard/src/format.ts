/** Figures as a person reads them. */

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "forever";
  if (!Number.isFinite(ms)) return "forever";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = s / 60;
  if (m < 60) return `${Math.floor(m)} min${Math.round(s % 60) ? ` ${Math.round(s % 60)} s` : ""}`;
  const h = m / 60;
  if (h < 48) return `${Math.floor(h)} h${Math.round(m % 60) ? ` ${Math.round(m % 60)} min` : ""}`;
  return `${Math.round(h / 24)} days`;
}

/** How long ago, coarse under 10 s: heartbeats come every few seconds, and the text need not flicker. */
export function ago(ms: number): string {
  return ms < 10_000 ? "under 10 s ago" : `${duration(ms)} ago`;
}

export function count(n: number): string {
  return n.toLocaleString("en-US");
}

export function params(n: number | undefined): string {
  if (!n) return "–";
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)}K`;
  return String(n);
}

export function time(at: number | string): string {
  return new Date(at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}
