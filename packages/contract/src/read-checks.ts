/**
 * The small checks of the contract's readers written by hand (no zod: read-infer-response.ts,
 * read-job-event.ts, readErrorBody), each as the schemas' own rules have it.
 */

/** A JSON object: not null, not an array. */
export const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** A whole number ≥ 0 (`z.number().int().nonnegative()`). */
export const isCount = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v >= 0;

/** A finite number ≥ 0. */
export const isAmount = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v) && v >= 0;

export const isString = (v: unknown): v is string => typeof v === "string";

/** Absent, or passing `check` (`.optional()`). */
export const isOptional = (v: unknown, check: (v: unknown) => boolean): boolean => v === undefined || check(v);
