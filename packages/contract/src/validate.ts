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
  for (const issue of issues.slice(0, 5).map(closestBranch)) {
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

/**
 * For a value that matched none of a union's options ("Invalid input"), the issue of the option it
 * came closest to: one whose type it has (its issues are not a wrong type of the value itself),
 * with the fewest issues. `input: at most 2048 inputs` says more than "Invalid input".
 */
function closestBranch(issue: z.core.$ZodIssue): z.core.$ZodIssue {
  if (issue.code !== "invalid_union" || !Array.isArray(issue.errors)) return issue;
  const typed = issue.errors.filter(
    (branch) => branch.length > 0 && !branch.some((i) => i.code === "invalid_type" && i.path.length === 0),
  );
  const best = typed.sort((a, b) => a.length - b.length)[0];
  const first = best?.[0];
  if (best === undefined || first === undefined) return issue;
  // options that come equally close must say the same thing, else none is picked
  const tied = typed.filter((b) => b.length === best.length);
  if (tied.some((b) => b.map((i) => i.message).join() !== best.map((i) => i.message).join())) return issue;
  return closestBranch({ ...first, path: [...issue.path, ...first.path] } as z.core.$ZodIssue);
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
