import { Bytes, type Device, DeviceId, DeviceKind, describeIssues, ValidationError } from "@rbee/contract";
import { z } from "zod";

/**
 * The environment variable that declares a (simulated) device inventory instead of detecting the
 * GPUs, for tests and capacity planning: a JSON array as {@link parseDeclaredDevices} reads it, e.g.
 * `RBEE_DEVICES='[{"id":"cuda:0","name":"RTX 4090 (simulated)","memory_total":25769803776}]'`.
 * The CPU is still detected unless the list declares "cpu" too. Empty means unset.
 */
export const RBEE_DEVICES_ENV = "RBEE_DEVICES";

const EXPECTED_FORM =
  'expected a JSON array of devices such as [{"id":"cuda:0","name":"RTX 4090 (simulated)","memory_total":25769803776}] ' +
  "(id cpu, cuda:N, metal:N, vulkan:N or rocm:N; memory in bytes; optional name, memory_used, memory_free, cores, " +
  "driver_version, compute_capability, unified_memory)";

/** One declared device: what a {@link Device} has, with only `id` and `memory_total` required. */
const DeclaredDevice = z.strictObject({
  id: DeviceId,
  kind: DeviceKind.optional(),
  name: z.string().min(1).optional(),
  memory_total: Bytes,
  memory_used: Bytes.optional(),
  memory_free: Bytes.optional(),
  cores: z.number().int().positive().optional(),
  driver_version: z.string().optional(),
  compute_capability: z.string().optional(),
  unified_memory: z.boolean().optional(),
  simulated: z.literal(true).optional(),
});
type DeclaredDevice = z.infer<typeof DeclaredDevice>;

/**
 * Reads a declared (simulated) device inventory: a JSON array of partial devices. Each gets its
 * kind from its id, the name "<id> (simulated)" unless it has one, `memory_used` 0 and `memory_free`
 * the rest of `memory_total` unless given, and `simulated: true`.
 *
 * @throws ValidationError naming the entry and field at fault and the expected form, for text that
 *   is not JSON, not an array, an entry that does not fit, memory that does not add up, or an id
 *   given twice.
 */
export function parseDeclaredDevices(json: string, what = "declared devices"): Device[] {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new ValidationError(`invalid ${what}: not JSON (${reason}); ${EXPECTED_FORM}`);
  }
  return declareDevices(value, what);
}

/** Like {@link parseDeclaredDevices}, for a value that is already parsed JSON. */
export function declareDevices(value: unknown, what = "declared devices"): Device[] {
  const parsed = z.array(DeclaredDevice).safeParse(value);
  if (!parsed.success) {
    const { message, param } = describeIssues(parsed.error.issues);
    const where = message.startsWith("[") ? `entry ${message}` : message;
    throw new ValidationError(`invalid ${what}: ${where}; ${EXPECTED_FORM}`, param);
  }
  const seen = new Set<string>();
  return parsed.data.map((entry, index) => {
    if (seen.has(entry.id)) {
      const message = `invalid ${what}: entry [${index}] declares ${entry.id} a second time; ids must be unique`;
      throw new ValidationError(message, `[${index}].id`);
    }
    seen.add(entry.id);
    return completeDevice(entry, index, what);
  });
}

/** The declared inventory in `env.RBEE_DEVICES`, or undefined when it is unset or empty. */
export function readDeclaredDevicesFromEnv(env: NodeJS.ProcessEnv = process.env): Device[] | undefined {
  const text = env[RBEE_DEVICES_ENV];
  if (text === undefined || text.trim() === "") return undefined;
  return parseDeclaredDevices(text, RBEE_DEVICES_ENV);
}

function completeDevice(entry: DeclaredDevice, index: number, what: string): Device {
  const kind = kindOf(entry.id);
  const fail = (reason: string) =>
    new ValidationError(`invalid ${what}: entry [${index}] (${entry.id}): ${reason}`, `[${index}]`);
  if (entry.kind !== undefined && entry.kind !== kind) {
    throw fail(`kind is "${entry.kind}" but the id says "${kind}"; leave kind out`);
  }
  const total = entry.memory_total;
  for (const field of ["memory_used", "memory_free"] as const) {
    const bytes = entry[field];
    if (bytes !== undefined && bytes > total) throw fail(`${field} (${bytes}) is more than memory_total (${total})`);
  }
  const { memory_used: givenUsed, memory_free: givenFree } = entry;
  if (givenUsed !== undefined && givenFree !== undefined && givenUsed + givenFree > total) {
    throw fail(`memory_used + memory_free (${givenUsed + givenFree}) is more than memory_total (${total})`);
  }
  const used = givenUsed ?? (givenFree === undefined ? 0 : total - givenFree);
  const free = givenFree ?? total - used;
  const { kind: _kind, simulated: _simulated, ...rest } = entry;
  return {
    ...rest,
    kind,
    name: entry.name ?? `${entry.id} (simulated)`,
    memory_used: used,
    memory_free: free,
    simulated: true,
  };
}

function kindOf(id: string): Device["kind"] {
  const prefix = id.split(":")[0];
  return DeviceKind.parse(prefix);
}
