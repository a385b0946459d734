import type { z } from "zod";
import { ValidationError } from "./errors.js";

export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: ValidationError };

function describePath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else out += out === "" ? String(key) : `.${String(key)}`;
  }
  return out;
}

/**
 * Formats zod issues as one line a person can act on, naming each field:
 * `max_tokens: Too small: expected number to be >=1; foo: unknown field`.
 */
export function describeIssues(issues: readonly z.core.$ZodIssue[]): { message: string; param: string | null } {
  const parts: string[] = [];
  let param: string | null = null;
  for (const issue of issues.slice(0, 5)) {
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        const field = describePath([...issue.path, key]);
        param ??= field;
        parts.push(`${field}: unknown field`);
      }
      continue;
    }
    const field = describePath(issue.path);
    param ??= field === "" ? null : field;
    parts.push(field === "" ? issue.message : `${field}: ${issue.message}`);
  }
  if (issues.length > 5) parts.push(`and ${issues.length - 5} more`);
  return { message: parts.join("; "), param };
}

/** Validates `value` against `schema` without throwing. `what` names the thing in the message. */
export function safeParse<S extends z.ZodType>(schema: S, value: unknown, what: string): ParseResult<z.output<S>> {
  const result = schema.safeParse(value);
  if (result.success) return { ok: true, value: result.data };
  const { message, param } = describeIssues(result.error.issues);
  return { ok: false, error: new ValidationError(`invalid ${what}: ${message}`, param) };
}

/** Validates `value` against `schema`, throwing a ValidationError (HTTP 400) that names the field. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = safeParse(schema, value, what);
  if (!result.ok) throw result.error;
  return result.value;
}

/** Parses JSON text into a result, never throwing. */
export function parseJson(text: string): { ok: true; value: unknown } | { ok: false; message: string } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, message: err instanceof Error ? err.message : String(err) };
  }
}
