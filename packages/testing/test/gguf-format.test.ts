import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readGgufFileInfo } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { float16BitsToFloat32, float32ToFloat16Bits } from "../src/gguf/float16.js";
import { GgmlType, type GgufKv, GgufType } from "../src/gguf/gguf-format.js";
import { readGgufHeader, readGgufHeaderSync } from "../src/gguf/read-gguf-header.js";
import { writeGguf } from "../src/gguf/write-gguf.js";
import { requireStoriesModel } from "../src/paths.js";

describe("float16", () => {
  it("converts known values, rounding to nearest even", () => {
    const cases: Array<[number, number]> = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [0.1, 0x2e66],
      [65504, 0x7bff], // largest finite
      [65519, 0x7bff], // just below the rounding point
      [65520, 0x7c00], // rounds up to Infinity
      [Number.POSITIVE_INFINITY, 0x7c00],
      [Number.NEGATIVE_INFINITY, 0xfc00],
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -25, 0x0000], // halfway to the smallest subnormal: ties to even (0)
      [1.5 * 2 ** -25, 0x0001],
      [3 * 2 ** -25, 0x0002], // halfway between 1 and 2 subnormal steps: ties to even (2)
      [1 + 2 ** -11, 0x3c00], // halfway between 1 and the next half: ties to even
      [1 + 3 * 2 ** -11, 0x3c02],
    ];
    for (const [value, bits] of cases) expect(float32ToFloat16Bits(value), `${value}`).toBe(bits);
    expect(float32ToFloat16Bits(Number.NaN) & 0x7c00).toBe(0x7c00);
    expect(float32ToFloat16Bits(Number.NaN) & 0x3ff).not.toBe(0);
  });

  it("round-trips every finite half", () => {
    const wrong: number[] = [];
    for (let bits = 0; bits < 0x10000; bits++) {
      if ((bits & 0x7c00) === 0x7c00) continue; // Infinity and NaN
      if (float32ToFloat16Bits(float16BitsToFloat32(bits)) !== bits) wrong.push(bits);
    }
    expect(wrong).toEqual([]);
  });
});

describe("readGgufHeader", () => {
  it("reads stories260K: a llama with a 512-token vocabulary", async () => {
    const path = requireStoriesModel();
    const header = await readGgufHeader(path);
    expect(header.version).toBe(3);
    expect(header.metadata.get("general.architecture")).toBe("llama");
    const tokens = header.metadata.get("tokenizer.ggml.tokens");
    expect(Array.isArray(tokens) && tokens.length).toBe(512);
    expect(header.metadata.get("tokenizer.ggml.model")).toBe("llama");
    expect(header.metadata.get("llama.embedding_length")).toBe(64);
    expect(header.tensors.length).toBeGreaterThan(0);
    expect(header.tensors[0]).toEqual({ name: "token_embd.weight", dims: [64, 512], type: GgmlType.F32, offset: 0 });
    expect(header.alignment).toBe(32);

    // the same as node-llama-cpp's own reader says, and the last tensor ends at the end of the file
    const info = await readGgufFileInfo(path, { readTensorInfo: true });
    const theirs = info.fullTensorInfo ?? [];
    expect(header.tensors.map((t) => [t.name, t.dims, t.type, t.offset])).toEqual(
      theirs.map((t) => [t.name, t.dimensions.map(Number), t.ggmlType, Number(t.offset)]),
    );
    const last = header.tensors.at(-1)!;
    const lastBytes = last.dims.reduce((a, b) => a * b, 1) * 4;
    expect(header.dataOffset + last.offset + lastBytes).toBe((await stat(path)).size);

    // a Buffer, and the synchronous reader, give the same answer
    const fromBuffer = await readGgufHeader(await readFile(path));
    expect(fromBuffer.kv).toEqual(header.kv);
    expect(readGgufHeaderSync(path).tensors).toEqual(header.tensors);
  });

  it("rejects a file that is not GGUF", async () => {
    await expect(readGgufHeader(new TextEncoder().encode("not a gguf file at all"))).rejects.toThrow(/bad magic/);
    await expect(readGgufHeader(new Uint8Array([0x47, 0x47, 0x55, 0x46, 3, 0]))).rejects.toThrow(/past the end/);
  });
});

describe("writeGguf", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "rbee-gguf-format-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("writes every metadata type and reads it back unchanged", async () => {
    const kv: GgufKv[] = [
      { key: "general.architecture", type: GgufType.STRING, value: "test ✓" },
      { key: "t.u8", type: GgufType.UINT8, value: 255 },
      { key: "t.i8", type: GgufType.INT8, value: -128 },
      { key: "t.u16", type: GgufType.UINT16, value: 65535 },
      { key: "t.i16", type: GgufType.INT16, value: -32768 },
      { key: "t.u32", type: GgufType.UINT32, value: 4294967295 },
      { key: "t.i32", type: GgufType.INT32, value: -2147483648 },
      { key: "t.f32", type: GgufType.FLOAT32, value: 0.5 },
      { key: "t.bool", type: GgufType.BOOL, value: true },
      { key: "t.u64", type: GgufType.UINT64, value: 2n ** 64n - 1n },
      { key: "t.i64", type: GgufType.INT64, value: -(2n ** 63n) },
      { key: "t.f64", type: GgufType.FLOAT64, value: Math.PI },
      { key: "t.strings", type: GgufType.ARRAY, arrayType: GgufType.STRING, value: ["a", "", "ü"] },
      { key: "t.i32s", type: GgufType.ARRAY, arrayType: GgufType.INT32, value: [1, -2, 3] },
      { key: "t.empty", type: GgufType.ARRAY, arrayType: GgufType.FLOAT32, value: [] },
    ];
    const path = join(dir, "types.gguf");
    const layout = await writeGguf(
      path,
      kv,
      [
        // 3 F16 elements (6 bytes) force padding before the next tensor
        { name: "a", dims: [3], type: GgmlType.F16, fill: (out) => out.fill(0x11) },
        { name: "b", dims: [2, 5], type: GgmlType.F32, fill: (out) => out.fill(0x22) },
      ],
      { chunkBytes: 4096 },
    );
    const header = await readGgufHeader(path);
    expect(header.kv).toEqual(kv);
    expect(header.tensors).toEqual([
      { name: "a", dims: [3], type: GgmlType.F16, offset: 0 },
      { name: "b", dims: [2, 5], type: GgmlType.F32, offset: 32 },
    ]);
    expect(header.dataOffset).toBe(layout.dataOffset);
    expect(layout.tensorBytes).toBe(6 + 40);
    expect(layout.fileBytes).toBe(layout.dataOffset + 32 + 64);

    const bytes = await readFile(path);
    expect(bytes.length).toBe(layout.fileBytes);
    const data = bytes.subarray(layout.dataOffset);
    expect([...data.subarray(0, 6)].every((b) => b === 0x11)).toBe(true);
    expect([...data.subarray(6, 32)].every((b) => b === 0)).toBe(true);
    expect([...data.subarray(32, 72)].every((b) => b === 0x22)).toBe(true);
    expect([...data.subarray(72)].every((b) => b === 0)).toBe(true);
  });
});
