import { Device, DeviceNotFoundError, ValidationError } from "@rbee/contract";
import { describe, expect, it } from "vitest";
import {
  type CommandRunner,
  detectDevices,
  normalizeDeviceId,
  parseDeclaredDevices,
  resolveDevice,
} from "../src/devices/index.js";

const GIB = 1024 * 1024 * 1024;

const noCommands: { run: CommandRunner; calls: string[] } = (() => {
  const calls: string[] = [];
  return {
    calls,
    run: async (cmd) => {
      calls.push(cmd);
      return null;
    },
  };
})();

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    if (err instanceof Error) return err;
    throw new Error(`threw a non-Error: ${String(err)}`);
  }
  throw new Error("did not throw");
}

describe("parseDeclaredDevices (simulated inventories)", () => {
  it("completes a declared simulated RTX 4090 into a full device", () => {
    const devices = parseDeclaredDevices('[{"id":"cuda:0","name":"RTX 4090 (simulated)","memory_total":25769803776}]');
    expect(devices).toEqual([
      {
        id: "cuda:0",
        kind: "cuda",
        name: "RTX 4090 (simulated)",
        memory_total: 24 * GIB,
        memory_used: 0,
        memory_free: 24 * GIB,
        simulated: true,
      },
    ]);
    for (const device of devices) expect(Device.parse(device)).toEqual(device);
  });

  it("infers kinds from ids, names unnamed devices, and derives used from free", () => {
    const devices = parseDeclaredDevices(
      JSON.stringify([
        { id: "metal:0", memory_total: 64 * GIB, memory_free: 48 * GIB, unified_memory: true },
        { id: "rocm:1", memory_total: 64 * GIB, memory_used: 4 * GIB },
        { id: "cpu", memory_total: 128 * GIB, cores: 32 },
      ]),
    );
    expect(devices.map((d) => [d.id, d.kind, d.name, d.memory_used, d.memory_free])).toEqual([
      ["metal:0", "metal", "metal:0 (simulated)", 16 * GIB, 48 * GIB],
      ["rocm:1", "rocm", "rocm:1 (simulated)", 4 * GIB, 60 * GIB],
      ["cpu", "cpu", "cpu (simulated)", 0, 128 * GIB],
    ]);
    expect(devices.every((d) => d.simulated === true)).toBe(true);
  });

  // [what, JSON, the fault named in the message, whether the message also shows the expected form]
  it.each([
    ["text that is not JSON", "[{id: cuda:0}]", /not JSON/, true],
    ["an object instead of an array", '{"id":"cuda:0","memory_total":1}', /expected array/, true],
    [
      "memory as a string",
      '[{"id":"cuda:0","memory_total":1},{"id":"cuda:1","memory_total":"24GB"}]',
      /entry \[1\]\.memory_total/,
      true,
    ],
    ["no memory_total", '[{"id":"cuda:0","name":"RTX 4090"}]', /entry \[0\]\.memory_total/, true],
    ["an id that is not a device id", '[{"id":"gpu0","memory_total":1}]', /entry \[0\]\.id: must be cpu, cuda:N/, true],
    ["an unknown field", '[{"id":"cuda:0","memory_total":1,"vram":1}]', /\[0\]\.vram: unknown field/, true],
    [
      "a kind that contradicts the id",
      '[{"id":"cuda:0","kind":"rocm","memory_total":1}]',
      /entry \[0\] \(cuda:0\): kind is "rocm" but the id says "cuda"/,
      false,
    ],
    [
      "more used than total",
      '[{"id":"cuda:0","memory_total":10,"memory_used":11}]',
      /memory_used \(11\) is more than memory_total \(10\)/,
      false,
    ],
    [
      "the same id twice",
      '[{"id":"cuda:0","memory_total":1},{"id":"cuda:0","memory_total":1}]',
      /entry \[1\] declares cuda:0 a second time/,
      false,
    ],
  ])("rejects %s with a message naming the fault", (_what, json, fault, showsForm) => {
    const err = thrown(() => parseDeclaredDevices(json));
    expect(err).toBeInstanceOf(ValidationError);
    expect(err.message).toMatch(fault);
    expect(err.message.includes('expected a JSON array of devices such as [{"id":"cuda:0"')).toBe(showsForm);
  });
});

describe("detectDevices with a declared (simulated) inventory", () => {
  const fourGpus = [0, 1, 2, 3].map((n) => ({
    id: `cuda:${n}`,
    kind: "cuda" as const,
    name: `RTX 4090 (simulated)`,
    memory_total: 24 * GIB,
    memory_used: 0,
    memory_free: 24 * GIB,
    simulated: true,
  }));

  it("with 4 declared simulated GPUs, lists the real CPU then the declared GPUs and runs no tool", async () => {
    const devices = await detectDevices({ declared: fourGpus, run: noCommands.run, env: {} });
    expect(devices.map((d) => d.id)).toEqual(["cpu", "cuda:0", "cuda:1", "cuda:2", "cuda:3"]);
    expect(devices[0]?.simulated).toBeUndefined();
    expect(noCommands.calls).toEqual([]);
  });

  it("with a declared simulated CPU, uses it, first", async () => {
    const declared = parseDeclaredDevices(
      '[{"id":"cuda:0","memory_total":1024},{"id":"cpu","memory_total":2048,"cores":4}]',
    );
    const devices = await detectDevices({ declared, run: noCommands.run, env: {} });
    expect(devices.map((d) => [d.id, d.simulated])).toEqual([
      ["cpu", true],
      ["cuda:0", true],
    ]);
  });

  it("reads a simulated inventory from RBEE_DEVICES, and options.declared wins over it", async () => {
    const env = { RBEE_DEVICES: '[{"id":"rocm:0","name":"MI300X (simulated)","memory_total":206158430208}]' };
    const fromEnv = await detectDevices({ env, run: noCommands.run });
    expect(fromEnv.map((d) => [d.id, d.name])).toEqual([
      ["cpu", expect.any(String)],
      ["rocm:0", "MI300X (simulated)"],
    ]);
    const fromOption = await detectDevices({ env, declared: [], run: noCommands.run });
    expect(fromOption.map((d) => d.id)).toEqual(["cpu"]);
    expect(noCommands.calls).toEqual([]);
  });

  it("rejects an invalid RBEE_DEVICES with a message naming the variable", async () => {
    await expect(detectDevices({ env: { RBEE_DEVICES: '[{"id":"cuda:0"}]' }, run: noCommands.run })).rejects.toThrow(
      /invalid RBEE_DEVICES: entry \[0\]\.memory_total/,
    );
  });
});

describe("resolveDevice", () => {
  const devices = parseDeclaredDevices(
    JSON.stringify([
      { id: "cpu", memory_total: GIB },
      { id: "cuda:0", memory_total: GIB },
      { id: "cuda:1", memory_total: GIB },
      { id: "metal:0", memory_total: GIB },
    ]),
  );

  it("finds a device that is there", () => {
    expect(resolveDevice("cuda:1", devices).id).toBe("cuda:1");
    expect(resolveDevice("cpu", devices).id).toBe("cpu");
  });

  it("reads a kind alone as its first device, whatever the case and spaces", () => {
    expect(resolveDevice("metal", devices).id).toBe("metal:0");
    expect(resolveDevice(" CUDA ", devices).id).toBe("cuda:0");
    expect(normalizeDeviceId("vulkan")).toBe("vulkan:0");
    expect(normalizeDeviceId("rocm:01")).toBe("rocm:1");
  });

  it("throws DeviceNotFoundError listing the devices that exist", () => {
    const err = thrown(() => resolveDevice("cuda:7", devices));
    expect(err).toBeInstanceOf(DeviceNotFoundError);
    expect(err.message).toBe(
      "device 'cuda:7' was not found on this machine; devices here: cpu, cuda:0, cuda:1, metal:0",
    );
    expect((err as DeviceNotFoundError).details).toEqual({
      device: "cuda:7",
      available: ["cpu", "cuda:0", "cuda:1", "metal:0"],
    });
    expect(thrown(() => resolveDevice("rocm", devices)).message).toContain("device 'rocm:0' was not found");
  });

  it.each(["gpu0", "cuda:x", "cuda:1234", "cpu:0", "", "cuda 0"])(
    "rejects the malformed id %j, saying what was given and what is accepted",
    (id) => {
      const err = thrown(() => resolveDevice(id, devices));
      expect(err).toBeInstanceOf(ValidationError);
      expect(err.message).toBe(
        `'${id}' is not a device id: use cpu, cuda:N, metal:N, vulkan:N or rocm:N (N a number; a kind alone, such as metal, means N = 0)`,
      );
    },
  );
});
