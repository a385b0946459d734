import { CatalogWorkerDetail, CatalogWorkerList } from "@rbee/contract";
import type { z } from "zod";
import { CliError, EXIT } from "./exit-codes.js";

/** Calls a worker catalog server's HTTP API (not the queen's: catalogs are independent servers). */
export async function catalogRequest<S extends z.ZodType>(
  catalog: string,
  path: string,
  schema: S,
  init: { method?: string; body?: unknown; token?: string } = {},
): Promise<z.output<S>> {
  let res: Response;
  try {
    res = await fetch(`${catalog}${path}`, {
      method: init.method ?? "GET",
      headers: {
        ...(init.body === undefined ? {} : { "content-type": "application/json" }),
        ...(init.token === undefined ? {} : { authorization: `Bearer ${init.token}` }),
      },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });
  } catch (err) {
    throw new CliError(
      `cannot reach the catalog server at ${catalog} (${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}); start one with \`rbee catalog serve\`, or name another with --catalog`,
      EXIT.unavailable,
    );
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new CliError(`${catalog}${path} answered ${res.status} with something that is not JSON`);
  }
  if (!res.ok) {
    const error = (body as { error?: { message?: string; code?: string } }).error;
    throw new CliError(
      `catalog ${catalog}: ${error?.message ?? `HTTP ${res.status}`}`,
      res.status === 404 ? EXIT.notFound : EXIT.failure,
    );
  }
  const parsed = schema.safeParse(body);
  if (!parsed.success)
    throw new CliError(`catalog ${catalog} sent an unexpected reply to ${path}: ${parsed.error.message}`);
  return parsed.data;
}

export function listWorkers(catalog: string, query: URLSearchParams): Promise<CatalogWorkerList> {
  const q = query.toString();
  return catalogRequest(catalog, `/workers${q ? `?${q}` : ""}`, CatalogWorkerList);
}

export function workerDetail(catalog: string, id: string): Promise<CatalogWorkerDetail> {
  return catalogRequest(catalog, `/workers/${encodeURIComponent(id)}`, CatalogWorkerDetail);
}
