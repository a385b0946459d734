import type { JobEvent, JobOperation } from "@rbee/contract";
import { useEffect, useState } from "preact/hooks";
import { api } from "../api";
import { duration, time } from "../format";
import { cancelJob, describeOperation, followJob } from "../jobs";
import { ErrorNote, JobLog, StatusPill } from "../ui";

interface JobSummary {
  job_id: string;
  status: "running" | "done" | "error" | "cancelled";
  operation: JobOperation;
  created_at: number;
  finished_at: number | null;
  events: number;
}

function JobDetail({ id }: { id: string }) {
  const [events, setEvents] = useState<JobEvent[]>([]);
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    const ac = new AbortController();
    setEvents([]);
    followJob(id, (e) => setEvents((prev) => [...prev, e]), ac.signal).catch(setError);
    return () => ac.abort();
  }, [id]);
  const tokens = events.filter((e) => e.type === "token").length;
  return (
    <div class="job-detail">
      <ErrorNote error={error} />
      <JobLog events={events} />
      {tokens > 0 ? <p class="muted">{tokens} tokens streamed</p> : null}
    </div>
  );
}

export function JobsPage() {
  const [jobs, setJobs] = useState<JobSummary[]>();
  const [error, setError] = useState<unknown>();
  const [open, setOpen] = useState<string>();
  useEffect(() => {
    let stopped = false;
    const load = async () => {
      try {
        const r = await api<{ jobs: JobSummary[] }>("/v1/jobs");
        if (!stopped) {
          setJobs(r.jobs);
          setError(undefined);
        }
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
  }, []);
  const running = jobs?.filter((j) => j.status === "running") ?? [];
  const recent = jobs?.filter((j) => j.status !== "running") ?? [];
  const list = (items: JobSummary[], title: string) => (
    <section aria-label={title}>
      <h2>{title}</h2>
      {items.length === 0 ? (
        <p class="muted empty">None.</p>
      ) : (
        <ul class="plain">
          {items.map((j) => (
            <li key={j.job_id} class="card job" data-job-id={j.job_id}>
              <div class="row between wrap">
                <button
                  type="button"
                  class="link"
                  aria-expanded={open === j.job_id}
                  onClick={() => setOpen(open === j.job_id ? undefined : j.job_id)}
                >
                  {describeOperation(j.operation)}
                </button>
                <span class="row">
                  <StatusPill status={j.status} />
                  <span class="muted">
                    {time(j.created_at)}
                    {j.finished_at ? ` · ${duration(j.finished_at - j.created_at)}` : ""}
                  </span>
                  {j.status === "running" ? (
                    <button type="button" class="danger" onClick={() => void cancelJob(j.job_id).catch(setError)}>
                      Cancel
                    </button>
                  ) : null}
                </span>
              </div>
              <div class="muted mono small">{j.job_id}</div>
              {open === j.job_id ? <JobDetail id={j.job_id} /> : null}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
  return (
    <>
      <h1>Jobs</h1>
      <ErrorNote error={error} />
      {jobs === undefined ? <p class="muted">Loading…</p> : null}
      {list(running, "Running")}
      {list(recent, "Recent")}
    </>
  );
}
