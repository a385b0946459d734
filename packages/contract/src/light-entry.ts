/**
 * `@rbee/contract/light`: the contract's constants, errors and readers that need no zod (the
 * protocol's ports and version, the error classes, SSE and JSON parsing, job events read by hand),
 * so that a client that only follows a job (`rbee infer`) starts without loading the schemas. Types
 * come from the main entry with `import type`, which loads nothing.
 */
export * from "./errors.js";
export * from "./json.js";
export * from "./protocol.js";
export * from "./read-job-event.js";
export * from "./sse.js";
