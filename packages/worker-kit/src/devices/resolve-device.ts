import { type Device, DeviceNotFoundError, ValidationError } from "@rbee/contract";
import { detectCpu } from "./detect-cpu.js";
import { detectDevices } from "./detect-devices.js";

const ACCEPTED_FORMS =
  "cpu, cuda:N, metal:N, vulkan:N or rocm:N (N a number; a kind alone, such as metal, means N = 0)";

/**
 * Normalises a device id as a person types it: case and surrounding spaces do not matter, a GPU kind
 * alone means its first device (`metal` → `metal:0`), and leading zeros go (`cuda:01` → `cuda:1`).
 *
 * @throws ValidationError saying what was given and the accepted forms, when it is not a device id.
 */
export function normalizeDeviceId(id: string): string {
  const text = id.trim().toLowerCase();
  if (text === "cpu") return "cpu";
  const match = /^(cuda|metal|vulkan|rocm)(?::(\d{1,3}))?$/.exec(text);
  if (!match) throw new ValidationError(`'${id}' is not a device id: use ${ACCEPTED_FORMS}`, "device", { device: id });
  return `${match[1]}:${Number(match[2] ?? "0")}`;
}

/**
 * Finds the device a worker was asked to run on among the devices of this machine.
 *
 * @throws ValidationError when `id` is not a device id (see {@link normalizeDeviceId}).
 * @throws DeviceNotFoundError naming the devices that do exist, when there is no such device here.
 */
export function resolveDevice(id: string, devices: readonly Device[]): Device {
  const wanted = normalizeDeviceId(id);
  const device = devices.find((d) => d.id === wanted);
  if (device === undefined)
    throw new DeviceNotFoundError(
      wanted,
      devices.map((d) => d.id),
    );
  return device;
}

/**
 * The device a worker was told to use (`--device`), found on this machine: the CPU without probing
 * for GPUs, a GPU among those detected. @throws as resolveDevice.
 */
export async function findDevice(id: string): Promise<Device> {
  return resolveDevice(id, id === "cpu" ? [detectCpu()] : await detectDevices());
}
