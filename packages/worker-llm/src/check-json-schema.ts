import { ValidationError } from "@rbee/contract";

const TYPES = new Set(["string", "number", "integer", "boolean", "null", "object", "array"]);
const SUBSCHEMA_MAPS = ["properties", "$defs", "definitions"] as const;
const SUBSCHEMA_LISTS = ["anyOf", "oneOf", "allOf", "prefixItems"] as const;
const SUBSCHEMA_SINGLE = ["items", "additionalProperties", "not"] as const;

/**
 * Checks the parts of a JSON Schema that decide the grammar (types and nesting), so that a typo
 * such as `"type": "strng"` is a 400 naming where it is instead of output that ignores it.
 */
export function checkJsonSchema(schema: unknown, path = "json_schema", param = path): void {
  if (typeof schema === "boolean") return;
  if (schema === null || typeof schema !== "object" || Array.isArray(schema)) {
    throw new ValidationError(`${path} must be a JSON Schema object`, param);
  }
  const s = schema as Record<string, unknown>;
  if (s.type !== undefined) {
    const types = Array.isArray(s.type) ? s.type : [s.type];
    for (const t of types) {
      if (typeof t !== "string" || !TYPES.has(t)) {
        throw new ValidationError(
          `${path}.type ${JSON.stringify(t)} is not a JSON Schema type; use one of ${[...TYPES].join(", ")}`,
          param,
        );
      }
    }
  }
  if (s.enum !== undefined && (!Array.isArray(s.enum) || s.enum.length === 0)) {
    throw new ValidationError(`${path}.enum must be a non-empty array`, param);
  }
  if (s.required !== undefined && (!Array.isArray(s.required) || s.required.some((r) => typeof r !== "string"))) {
    throw new ValidationError(`${path}.required must be an array of property names`, param);
  }
  for (const key of SUBSCHEMA_MAPS) {
    const map = s[key];
    if (map === undefined) continue;
    if (map === null || typeof map !== "object" || Array.isArray(map)) {
      throw new ValidationError(`${path}.${key} must be an object of schemas`, param);
    }
    for (const [name, sub] of Object.entries(map)) checkJsonSchema(sub, `${path}.${key}.${name}`, param);
  }
  for (const key of SUBSCHEMA_LISTS) {
    const list = s[key];
    if (list === undefined) continue;
    if (!Array.isArray(list)) throw new ValidationError(`${path}.${key} must be an array of schemas`, param);
    for (const [i, sub] of list.entries()) checkJsonSchema(sub, `${path}.${key}[${i}]`, param);
  }
  for (const key of SUBSCHEMA_SINGLE) {
    if (s[key] !== undefined) checkJsonSchema(s[key], `${path}.${key}`, param);
  }
}
