/**
 * The configuration the hive gave this worker: `RBEE_WORKER_CONFIG`, a JSON object checked against
 * its package's `config_schema`, with the schema's defaults filled in. `{}` when there is none (a
 * worker started by hand, or a type without a schema). A worker kit program calls it once at start:
 *
 * ```js
 * const { case: letterCase = "as-is" } = workerConfig();
 * ```
 */
export function workerConfig<T extends Record<string, unknown> = Record<string, unknown>>(
  env: NodeJS.ProcessEnv = process.env,
): T {
  const text = env.RBEE_WORKER_CONFIG;
  if (text === undefined || text === "") return {} as T;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`RBEE_WORKER_CONFIG is not JSON (${(err as Error).message}); the hive sets it to a JSON object`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`RBEE_WORKER_CONFIG must be a JSON object, got ${text.slice(0, 80)}`);
  }
  return value as T;
}
