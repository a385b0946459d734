import type { JobEvent, JobOperation } from "@rbee/contract";
import { useEffect, useRef, useState } from "preact/hooks";
import { cancelJob, createJob, followJob } from "./jobs";

export interface JobRun {
  id: string | undefined;
  events: JobEvent[];
  running: boolean;
  /** The terminal event, once the job ended. */
  end: JobEvent | undefined;
  /** A refusal of the job itself (validation, auth), as the API wrote it. */
  error: unknown;
  start(op: JobOperation): Promise<JobEvent | undefined>;
  cancel(): Promise<void>;
  reset(): void;
}

/** Runs one job at a time and follows its events; the component re-renders as they come. */
export function useJob(onEvent?: (e: JobEvent) => void): JobRun {
  const [id, setId] = useState<string>();
  const [events, setEvents] = useState<JobEvent[]>([]);
  const [running, setRunning] = useState(false);
  const [end, setEnd] = useState<JobEvent>();
  const [error, setError] = useState<unknown>();
  const abort = useRef<AbortController>();
  const onEventRef = useRef(onEvent);
  onEventRef.current = onEvent;
  useEffect(() => () => abort.current?.abort(), []);
  return {
    id,
    events,
    running,
    end,
    error,
    async start(op) {
      abort.current?.abort();
      const ac = new AbortController();
      abort.current = ac;
      setEvents([]);
      setEnd(undefined);
      setError(undefined);
      setRunning(true);
      try {
        const created = await createJob(op);
        setId(created.job_id);
        const last = await followJob(
          created.job_id,
          (e) => {
            setEvents((prev) => [...prev, e]);
            onEventRef.current?.(e);
          },
          ac.signal,
        );
        if (!ac.signal.aborted) setEnd(last);
        return last;
      } catch (err) {
        if (!ac.signal.aborted) setError(err);
        return undefined;
      } finally {
        if (abort.current === ac) setRunning(false);
      }
    },
    async cancel() {
      if (!id) return;
      try {
        await cancelJob(id);
      } catch (err) {
        setError(err);
      }
    },
    reset() {
      abort.current?.abort();
      setId(undefined);
      setEvents([]);
      setEnd(undefined);
      setError(undefined);
      setRunning(false);
    },
  };
}
