import { z } from "zod";
import { SAFE_ID_PATTERN, SAFE_ID_RULE } from "./protocol.js";

/** An ISO-8601 timestamp in UTC, as `new Date().toISOString()` writes it. */
export const Timestamp = z.iso.datetime({ offset: true }).describe("ISO-8601 timestamp");
export type Timestamp = z.infer<typeof Timestamp>;

/** A count of bytes. */
export const Bytes = z.number().int().nonnegative().describe("a size in bytes");

/**
 * Identifiers that end up in file names, URLs and log lines (worker ids, hive ids, catalog ids):
 * lower-case letters, digits, `.`, `_` and `-`, not starting with a dot, at most 128 characters.
 * Nothing that matches can name a path outside the directory it is joined to.
 */
export const SafeId = z.string().regex(SAFE_ID_PATTERN, SAFE_ID_RULE);

/** A device id: `cpu`, `cuda:N`, `metal:N`, `vulkan:N` or `rocm:N`. */
export const DeviceId = z
  .string()
  .regex(/^(cpu|(cuda|metal|vulkan|rocm):\d{1,3})$/, "must be cpu, cuda:N, metal:N, vulkan:N or rocm:N");
export type DeviceId = z.infer<typeof DeviceId>;

export const DeviceKind = z.enum(["cpu", "cuda", "metal", "vulkan", "rocm"]);
export type DeviceKind = z.infer<typeof DeviceKind>;

/** An absolute http(s) URL. */
export const HttpUrl = z.url({ protocol: /^https?$/ });
