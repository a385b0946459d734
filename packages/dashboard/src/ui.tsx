import type { JobEvent } from "@rbee/contract";
import { useEffect, useRef } from "preact/hooks";
import { bytes, time } from "./format";

/** An error as the API wrote it. */
export function ErrorNote({ error }: { error: unknown }) {
  if (!error) return null;
  const message = error instanceof Error ? error.message : String(error);
  return (
    <p class="error" role="alert">
      {message}
    </p>
  );
}

export function StatusPill({ status }: { status: string }) {
  return <span class={`pill s-${status.toLowerCase()}`}>{status}</span>;
}

/** Device memory: used by rbee's workers, used by everything else, free. */
export function MemoryBar({ total, used, rbee, label }: { total: number; used: number; rbee: number; label: string }) {
  const mine = Math.min(rbee, used);
  const others = Math.max(0, used - mine);
  const free = Math.max(0, total - used);
  const pct = (n: number) => (total > 0 ? `${((100 * n) / total).toFixed(2)}%` : "0%");
  const text = `${label}: ${bytes(mine)} used by rbee, ${bytes(others)} by others, ${bytes(free)} free of ${bytes(total)}`;
  return (
    <div class="membar-wrap">
      <div class="membar" role="img" aria-label={text} title={text}>
        {/* a few MB on a large device still shows: 3 px at least */}
        {mine > 0 ? <span class="m-rbee" style={{ width: pct(mine), minWidth: "3px" }} /> : null}
        {others > 0 ? <span class="m-other" style={{ width: pct(others), minWidth: "1px" }} /> : null}
      </div>
      <div class="membar-legend">
        <span>
          <i class="sw m-rbee" aria-hidden="true" /> rbee {bytes(mine)}
        </span>
        <span>
          <i class="sw m-other" aria-hidden="true" /> others {bytes(others)}
        </span>
        <span>
          <i class="sw m-free" aria-hidden="true" /> free {bytes(free)}
        </span>
        <span class="muted">of {bytes(total)}</span>
      </div>
    </div>
  );
}

export function ProgressBar({ done, total, label }: { done: number; total: number | null; label: string }) {
  const known = total !== null && total > 0;
  const pct = known ? Math.min(100, (100 * done) / total) : 0;
  return (
    <div
      class={`bar${known ? "" : " indeterminate"}`}
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={known ? 100 : undefined}
      aria-valuenow={known ? Math.floor(pct) : undefined}
    >
      <span style={{ width: known ? `${pct}%` : "30%" }} />
    </div>
  );
}

/** A job's narration and outcome, as it streams. */
export function JobLog({ events }: { events: readonly JobEvent[] }) {
  const box = useRef<HTMLOListElement>(null);
  useEffect(() => {
    const el = box.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [events.length]);
  const lines = events.filter((e) => e.type !== "token" && e.type !== "progress" && e.type !== "data");
  const progress = events.findLast((e) => e.type === "progress");
  return (
    <div class="joblog">
      {progress && progress.type === "progress" && !events.some((e) => e.type === "done") ? (
        <div class="progress-line">
          <ProgressBar done={progress.done} total={progress.total} label={progress.label ?? "progress"} />
          <span>
            {progress.unit === "bytes" ? bytes(progress.done) : progress.done}
            {progress.total ? ` / ${progress.unit === "bytes" ? bytes(progress.total) : progress.total}` : ""}
            {progress.total ? ` (${Math.floor((100 * progress.done) / progress.total)}%)` : ""}
            {progress.rate ? ` · ${bytes(progress.rate)}/s` : ""}
          </span>
        </div>
      ) : null}
      <ol ref={box} class="narration" aria-live="polite">
        {lines.map((e) => (
          <li key={e.seq} class={`ev-${e.type}${e.type === "narration" && e.level ? ` lv-${e.level}` : ""}`}>
            <time>{time(e.at)}</time>{" "}
            {e.type === "narration" ? (
              <>
                <span class="src">{e.source}</span> {e.message}
              </>
            ) : e.type === "error" ? (
              <>
                <strong>error</strong> {e.message} <span class="muted">({e.code})</span>
              </>
            ) : e.type === "cancelled" ? (
              <>
                <strong>cancelled</strong> {e.reason ?? ""}
              </>
            ) : (
              <strong>done</strong>
            )}
          </li>
        ))}
      </ol>
    </div>
  );
}
