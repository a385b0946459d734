import { z } from "zod";
import { ValidationError } from "./errors.js";

/**
 * A worker package's `config_schema` and the configuration a spawn gives its worker
 * (docs/worker-catalog.md#configuration). The schema is JSON Schema, this subset of it:
 *
 * - `type`: "object", "string", "number", "integer", "boolean", "array", "null" (or a list of them)
 * - `properties`, `required`, `additionalProperties` (true, false, or a schema for the others)
 * - `enum`, `minimum`, `maximum`, `items`, `default`
 * - annotations, which change nothing: `title`, `description`, `$schema`, `$comment`, `examples`
 *
 * A schema with any other keyword is refused when the package is read (published or installed),
 * so that no constraint its author wrote is silently not checked.
 */
export type ConfigSchema = Record<string, unknown>;

/** A spawn's configuration for its worker: a JSON object (checked against the type's config_schema). */
export const WorkerConfig = z.record(z.string(), z.unknown());
export type WorkerConfig = z.infer<typeof WorkerConfig>;

const TYPES = ["object", "string", "number", "integer", "boolean", "array", "null"] as const;
const KEYWORDS = new Set([
  "type",
  "properties",
  "required",
  "additionalProperties",
  "enum",
  "minimum",
  "maximum",
  "items",
  "default",
  "title",
  "description",
  "$schema",
  "$comment",
  "examples",
]);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** What is wrong with a config schema (keywords outside the subset, malformed values); empty when usable. */
export function configSchemaProblems(schema: unknown, at = "config_schema"): string[] {
  if (!isObject(schema)) return [`${at} must be a JSON Schema object`];
  const problems: string[] = [];
  for (const k of Object.keys(schema)) {
    if (!KEYWORDS.has(k)) {
      problems.push(
        `${at}: keyword '${k}' is not supported; use type, properties, required, additionalProperties, enum, minimum, maximum, items, default`,
      );
    }
  }
  const types = schema.type === undefined ? [] : Array.isArray(schema.type) ? schema.type : [schema.type];
  for (const t of types) {
    if (!(TYPES as readonly unknown[]).includes(t))
      problems.push(`${at}.type: '${String(t)}' is not one of ${TYPES.join(", ")}`);
  }
  if (schema.properties !== undefined) {
    if (!isObject(schema.properties)) problems.push(`${at}.properties must be an object of schemas`);
    else
      for (const [name, sub] of Object.entries(schema.properties))
        problems.push(...configSchemaProblems(sub, `${at}.properties.${name}`));
  }
  if (
    schema.required !== undefined &&
    !(Array.isArray(schema.required) && schema.required.every((r) => typeof r === "string"))
  )
    problems.push(`${at}.required must be a list of property names`);
  if (schema.additionalProperties !== undefined && typeof schema.additionalProperties !== "boolean")
    problems.push(...configSchemaProblems(schema.additionalProperties, `${at}.additionalProperties`));
  if (schema.items !== undefined) problems.push(...configSchemaProblems(schema.items, `${at}.items`));
  if (schema.enum !== undefined && !(Array.isArray(schema.enum) && schema.enum.length > 0))
    problems.push(`${at}.enum must be a non-empty list`);
  for (const k of ["minimum", "maximum"] as const)
    if (schema[k] !== undefined && typeof schema[k] !== "number") problems.push(`${at}.${k} must be a number`);
  if (problems.length === 0 && schema.default !== undefined) {
    const wrong = check(schema, structuredClone(schema.default), `${at}.default`);
    if (wrong !== undefined)
      problems.push(`${wrong.param} ${wrong.message}: the default does not match its own schema`);
  }
  return problems;
}

function typeOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}

function describe(schema: ConfigSchema): string {
  if (Array.isArray(schema.enum)) return `one of ${schema.enum.map((e) => JSON.stringify(e)).join(", ")}`;
  const types = schema.type === undefined ? [] : Array.isArray(schema.type) ? schema.type : [schema.type];
  const words: Record<string, string> = {
    object: "an object",
    array: "a list",
    integer: "a whole number",
    boolean: "true or false",
    null: "null",
  };
  let what = types.length === 0 ? "a value" : types.map((t) => words[String(t)] ?? `a ${String(t)}`).join(" or ");
  if (typeof schema.minimum === "number" && typeof schema.maximum === "number")
    what += ` from ${schema.minimum} to ${schema.maximum}`;
  else if (typeof schema.minimum === "number") what += ` of at least ${schema.minimum}`;
  else if (typeof schema.maximum === "number") what += ` of at most ${schema.maximum}`;
  return what;
}

/**
 * The settings a config schema offers, one line each, for people (`rbee worker info`):
 * `case: one of "as-is", "upper", "lower" (default "as-is")`.
 */
export function describeConfigSchema(schema: ConfigSchema | undefined): string[] {
  if (schema === undefined || !isObject(schema.properties)) return [];
  const required = Array.isArray(schema.required) ? (schema.required as unknown[]) : [];
  return Object.entries(schema.properties).map(([name, sub]) => {
    if (!isObject(sub)) return name;
    const notes = [
      ...(required.includes(name) ? ["required"] : []),
      ...(sub.default === undefined ? [] : [`default ${shown(sub.default)}`]),
    ];
    const what = `${name}: ${describe(sub)}${notes.length > 0 ? ` (${notes.join(", ")})` : ""}`;
    return typeof sub.description === "string" ? `${what}: ${sub.description}` : what;
  });
}

const shown = (v: unknown) => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

/**
 * Checks `value` against `schema` and fills in defaults, in place; the first problem found (the
 * JSON path of the field, what was expected), or undefined.
 */
function check(schema: ConfigSchema, value: unknown, path: string): { param: string; message: string } | undefined {
  const types = schema.type === undefined ? [] : Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type];
  const actual = typeOf(value);
  if (types.length > 0 && !types.includes(actual) && !(actual === "integer" && types.includes("number")))
    return { param: path, message: `must be ${describe(schema)}, got ${shown(value)}` };
  if (Array.isArray(schema.enum) && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(value)))
    return { param: path, message: `must be ${describe(schema)}, got ${shown(value)}` };
  if (typeof value === "number") {
    if (
      (typeof schema.minimum === "number" && value < schema.minimum) ||
      (typeof schema.maximum === "number" && value > schema.maximum)
    )
      return { param: path, message: `must be ${describe(schema)}, got ${value}` };
  }
  if (Array.isArray(value) && isObject(schema.items)) {
    for (let i = 0; i < value.length; i++) {
      const wrong = check(schema.items, value[i], `${path}[${i}]`);
      if (wrong !== undefined) return wrong;
    }
  }
  if (isObject(value)) {
    const props = isObject(schema.properties) ? schema.properties : {};
    for (const [name, sub] of Object.entries(props)) {
      if (!(name in value) && isObject(sub) && sub.default !== undefined) value[name] = structuredClone(sub.default);
    }
    for (const name of Array.isArray(schema.required) ? (schema.required as string[]) : []) {
      if (!(name in value)) {
        const sub = props[name];
        return {
          param: `${path}.${name}`,
          message: `is required${isObject(sub) ? ` (${describe(sub)})` : ""}`,
        };
      }
    }
    for (const [name, v] of Object.entries(value)) {
      const sub = Object.hasOwn(props, name) ? props[name] : schema.additionalProperties;
      if (sub === false) {
        const known = Object.keys(props);
        return {
          param: `${path}.${name}`,
          message: `is not a setting of this worker type; ${known.length === 0 ? "it takes none" : `it takes ${known.join(", ")}`}`,
        };
      }
      if (isObject(sub)) {
        const wrong = check(sub, v, `${path}.${name}`);
        if (wrong !== undefined) return wrong;
      }
    }
  }
  return undefined;
}

/**
 * The configuration a worker of a type gets: `config` checked against the type's `config_schema`,
 * its defaults filled in (a copy; `config` is not changed). A type without a schema takes no
 * configuration: undefined, or a ValidationError when some is given. A value that does not match
 * is a ValidationError (400) whose param is the field (`config.<name>`) and whose message says what
 * was expected.
 */
export function workerConfigFor(
  typeId: string,
  schema: ConfigSchema | undefined,
  config: Record<string, unknown> | undefined,
): Record<string, unknown> | undefined {
  if (schema === undefined) {
    if (config === undefined || Object.keys(config).length === 0) return undefined;
    throw new ValidationError(
      `config: worker type '${typeId}' takes no configuration (its package has no config_schema); spawn it without --config`,
      "config",
    );
  }
  const value: unknown = structuredClone(config ?? {});
  const wrong = check(schema, value, "config");
  if (wrong !== undefined) {
    throw new ValidationError(
      `${wrong.param} ${wrong.message}: worker type '${typeId}' refuses this configuration (its config_schema: rbee worker info ${typeId})`,
      wrong.param,
    );
  }
  return value as Record<string, unknown>;
}
