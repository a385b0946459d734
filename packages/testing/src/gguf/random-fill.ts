import { float32ToFloat16Bits } from "./float16.js";

/** Mixes a seed and a stream number into a well-spread 32-bit state (murmur3's finaliser). */
export function mixSeed(seed: number, stream: number): number {
  let h = (Math.imul(seed | 0, 0x9e3779b1) ^ Math.imul(stream | 0, 0x85ebca77)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * A deterministic stream of uniform values in [-amplitude, amplitude), written straight as
 * F16 or F32 elements. Each 32-bit output of a mulberry32 generator picks two entries of a
 * 65,536-entry quantile table, so a value costs half a PRNG step and one table lookup (the
 * table quantises the uniform distribution to 2^16 levels, finer than F16's own resolution).
 * The stream does not depend on how the caller slices it into chunks.
 */
export class UniformStream {
  #state: number;
  /** The second half of a 32-bit draw, kept when a slice ended in the middle of a pair. */
  #spare = -1;
  readonly #table16: Uint16Array | undefined;
  readonly #table32: Float32Array | undefined;

  constructor(seed: number, amplitude: number, elementType: "f16" | "f32") {
    this.#state = seed >>> 0;
    if (elementType === "f16") this.#table16 = uniformTable16(amplitude);
    else this.#table32 = uniformTable32(amplitude);
  }

  /** Fills `out` (F16 bit patterns) with the next `out.length` values. */
  fill16(out: Uint16Array): void {
    const table = this.#table16;
    if (!table) throw new Error("this stream produces f32 values");
    let i = 0;
    const n = out.length;
    if (n === 0) return;
    if (this.#spare >= 0) {
      out[i++] = table[this.#spare]!;
      this.#spare = -1;
    }
    let a = this.#state;
    const pairsEnd = i + ((n - i) & ~1);
    while (i < pairsEnd) {
      // mulberry32
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      t ^= t >>> 14;
      out[i] = table[t & 0xffff]!;
      out[i + 1] = table[t >>> 16]!;
      i += 2;
    }
    if (i < n) {
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      t ^= t >>> 14;
      out[i] = table[t & 0xffff]!;
      this.#spare = t >>> 16;
    }
    this.#state = a;
  }

  /** Fills `out` with the next `out.length` values (the same draws fill16 would make). */
  fill32(out: Float32Array): void {
    const table = this.#table32;
    if (!table) throw new Error("this stream produces f16 values");
    let i = 0;
    const n = out.length;
    if (n === 0) return;
    if (this.#spare >= 0) {
      out[i++] = table[this.#spare]!;
      this.#spare = -1;
    }
    let a = this.#state;
    while (i < n) {
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      t ^= t >>> 14;
      out[i++] = table[t & 0xffff]!;
      if (i < n) out[i++] = table[t >>> 16]!;
      else this.#spare = t >>> 16;
    }
    this.#state = a;
  }
}

const tables16 = new Map<number, Uint16Array>();
const tables32 = new Map<number, Float32Array>();

/** The value of quantile `i` of 65,536 of the uniform distribution on [-amplitude, amplitude). */
function quantile(i: number, amplitude: number): number {
  return ((i + 0.5) / 65536) * 2 * amplitude - amplitude;
}

function uniformTable32(amplitude: number): Float32Array {
  let table = tables32.get(amplitude);
  if (!table) {
    table = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) table[i] = quantile(i, amplitude);
    tables32.set(amplitude, table);
  }
  return table;
}

function uniformTable16(amplitude: number): Uint16Array {
  let table = tables16.get(amplitude);
  if (!table) {
    table = new Uint16Array(65536);
    for (let i = 0; i < 65536; i++) table[i] = float32ToFloat16Bits(quantile(i, amplitude));
    tables16.set(amplitude, table);
  }
  return table;
}
