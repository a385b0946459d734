import { z } from "zod";
import { Bytes, DeviceId, DeviceKind } from "./common.js";

/**
 * One compute device on one machine, as the hive reports it.
 * Memory figures are bytes and are a snapshot taken when the device list was read.
 */
export const Device = z.strictObject({
  id: DeviceId,
  kind: DeviceKind,
  name: z.string().min(1),
  memory_total: Bytes,
  memory_used: Bytes,
  memory_free: Bytes,
  /** CPU only: logical cores the OS reports. */
  cores: z.number().int().positive().optional(),
  /** GPU only: the driver version the vendor tool reported. */
  driver_version: z.string().optional(),
  /** NVIDIA only: CUDA compute capability, e.g. "8.9". */
  compute_capability: z.string().optional(),
  /** Apple only: memory shared between CPU and GPU. */
  unified_memory: z.boolean().optional(),
  /** True when the device was declared (for tests and planning), not detected. */
  simulated: z.boolean().optional(),
});
export type Device = z.infer<typeof Device>;
