import { type DownloadRequest, type DownloadResult, downloadFile } from "./download-file.js";
import { type DownloadProgress, ProgressMeter } from "./progress.js";

export interface DownloadFilesOptions {
  /** Files fetched at once (each may itself use several ranged parts). Default 2. */
  concurrency?: number;
  /** Aborts every file; each keeps its part for a later call. */
  signal?: AbortSignal;
  /** Progress over all the files together, at most 10 times a second. */
  onProgress?: (p: DownloadProgress) => void;
}

/**
 * Downloads several files (the shards of a split GGUF, a model and its config), `concurrency` at a
 * time, with one progress over all of them. The first failure stops the others (their parts stay
 * for a resume) and is thrown; the results come in the order of the requests.
 */
export async function downloadFiles(reqs: DownloadRequest[], o: DownloadFilesOptions = {}): Promise<DownloadResult[]> {
  o.signal?.throwIfAborted();
  const inner = new AbortController();
  const signal = o.signal ? AbortSignal.any([o.signal, inner.signal]) : inner.signal;
  const latest: Array<DownloadProgress | undefined> = reqs.map(() => undefined);
  const meter = o.onProgress
    ? new ProgressMeter(() => {
        let done = 0;
        let fetched = 0;
        let total: number | null = 0;
        reqs.forEach((r, i) => {
          const p = latest[i];
          done += p?.done ?? 0;
          fetched += p?.fetched ?? 0;
          const t = p?.total ?? r.size ?? null;
          total = total === null || t === null ? null : total + t;
        });
        return { done, total, fetched };
      }, o.onProgress)
    : undefined;
  const results: DownloadResult[] = new Array(reqs.length);
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async () => {
    while (failure === undefined && next < reqs.length) {
      const i = next++;
      const r = reqs[i]!;
      try {
        results[i] = await downloadFile({
          ...r,
          signal: r.signal ? AbortSignal.any([r.signal, signal]) : signal,
          onProgress: (p) => {
            latest[i] = p;
            r.onProgress?.(p);
          },
        });
      } catch (err) {
        if (failure === undefined) {
          failure = { err };
          inner.abort(err);
        }
      }
    }
  };
  meter?.start();
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency ?? 2, reqs.length)) }, worker));
  } finally {
    meter?.stop(failure === undefined);
  }
  if (o.signal?.aborted) throw o.signal.reason;
  if (failure) throw failure.err;
  return results;
}
