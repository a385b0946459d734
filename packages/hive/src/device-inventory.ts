import type { Device } from "@rbee/contract";
import type { Logger } from "@rbee/server-kit";
import { detectCpu, detectDevices, readDeclaredDevicesFromEnv, resolveDevice } from "@rbee/worker-kit";

export interface DeviceInventoryOptions {
  /** Read for RBEE_DEVICES (a declared, simulated inventory). */
  env: NodeJS.ProcessEnv;
  /** How often GPUs are detected again (their tools are slow-ish); the CPU is read on every call. */
  gpuRefreshMs: number;
  log: Logger;
}

/**
 * The devices of this machine: detected once at start (or declared by RBEE_DEVICES), the CPU's
 * memory figures refreshed whenever the list is read (cheap), the GPUs' in the background every
 * `gpuRefreshMs`. A declared inventory is never re-detected, and neither is a machine on which no
 * GPU was found (the Vulkan probe starts llama.cpp in a child process: not worth it every 30 s).
 */
export class DeviceInventory {
  #devices: Device[];
  #declared: boolean;
  #options: DeviceInventoryOptions;
  #gpusAt = Date.now();
  #refreshing: Promise<void> | undefined;

  private constructor(devices: Device[], declared: boolean, options: DeviceInventoryOptions) {
    this.#devices = devices;
    this.#declared = declared;
    this.#options = options;
  }

  /** @throws ValidationError when RBEE_DEVICES is set but invalid. */
  static async detect(options: DeviceInventoryOptions): Promise<DeviceInventory> {
    const declared = readDeclaredDevicesFromEnv(options.env) !== undefined;
    const devices = await detectDevices({
      env: options.env,
      onWarning: (message) => options.log.warn({ message }, "device detection"),
    });
    return new DeviceInventory(devices, declared, options);
  }

  /** The devices now; starts a GPU refresh in the background when one is due. */
  current(): Device[] {
    if (this.#hasDetectedGpus() && Date.now() - this.#gpusAt >= this.#options.gpuRefreshMs) this.#refreshGpus();
    return this.#devices.map((d) => (d.id === "cpu" && !d.simulated ? detectCpu() : d));
  }

  /**
   * The device a worker was asked to run on.
   * @throws DeviceNotFoundError (400) naming the devices there are; ValidationError for a malformed id.
   */
  find(id: string): Device {
    return resolveDevice(id, this.#devices);
  }

  /** Waits for a GPU refresh in progress (tests, shutdown). */
  async settled(): Promise<void> {
    await this.#refreshing;
  }

  #hasDetectedGpus(): boolean {
    return !this.#declared && this.#devices.some((d) => d.id !== "cpu");
  }

  #refreshGpus(): void {
    if (this.#refreshing !== undefined) return;
    this.#gpusAt = Date.now();
    this.#refreshing = detectDevices({
      env: this.#options.env,
      onWarning: (message) => this.#options.log.debug({ message }, "device detection"),
    })
      .then((devices) => {
        this.#devices = devices;
      })
      .catch((err: unknown) => this.#options.log.warn({ err }, "device refresh failed; keeping the last list"))
      .finally(() => {
        this.#refreshing = undefined;
      });
  }
}
