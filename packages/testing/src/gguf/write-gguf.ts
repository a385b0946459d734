import { type FileHandle, open } from "node:fs/promises";
import {
  alignUp,
  GGML_TYPE_SIZE,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_VERSION,
  type GgmlType,
  type GgufKv,
  type GgufScalarType,
  type GgufTensorInfo,
  GgufType,
  type GgufValue,
} from "./gguf-format.js";

/** A tensor to write: its shape and type, and a callback that produces its data in order. */
export interface GgufTensorSource {
  name: string;
  /** Dimensions, fastest-varying first. */
  dims: number[];
  type: GgmlType;
  /**
   * Fills `out` with the next bytes of the tensor's data. Called with consecutive slices
   * that together cover the tensor; each slice is a whole number of elements and its
   * byteOffset is a multiple of the element size (so typed-array views fit).
   */
  fill(out: Uint8Array): void;
}

/** Where everything lands in a GGUF file. */
export interface GgufLayout {
  /** Header bytes (metadata and tensor infos), before the padding to the data section. */
  headerBytes: number;
  /** Where the tensor data section starts. */
  dataOffset: number;
  alignment: number;
  /** Each tensor's info (offsets relative to dataOffset) and its data size. */
  tensors: Array<GgufTensorInfo & { bytes: number }>;
  /** The sum of the tensors' data sizes, without the alignment padding between them. */
  tensorBytes: number;
  /** The file's exact size: data section start plus every tensor padded to the alignment. */
  fileBytes: number;
}

/** The bytes of a GGUF header, padded to the data section, and the file layout it implies. */
export function encodeGgufHeader(
  kv: readonly GgufKv[],
  tensors: ReadonlyArray<Pick<GgufTensorSource, "name" | "dims" | "type">>,
): { bytes: Uint8Array; layout: GgufLayout } {
  const alignmentKv = kv.find((e) => e.key === "general.alignment");
  const alignment = typeof alignmentKv?.value === "number" ? alignmentKv.value : GGUF_DEFAULT_ALIGNMENT;

  const infos: GgufLayout["tensors"] = [];
  let offset = 0;
  let tensorBytes = 0;
  for (const t of tensors) {
    const elements = t.dims.reduce((a, b) => a * b, 1);
    const bytes = elements * GGML_TYPE_SIZE[t.type];
    infos.push({ name: t.name, dims: [...t.dims], type: t.type, offset, bytes });
    tensorBytes += bytes;
    offset = alignUp(offset + bytes, alignment);
  }

  const enc = new Encoder();
  enc.u32(GGUF_MAGIC);
  enc.u32(GGUF_VERSION);
  enc.u64(infos.length);
  enc.u64(kv.length);
  for (const e of kv) {
    enc.string(e.key);
    enc.u32(e.type);
    if (e.type === GgufType.ARRAY) {
      enc.u32(e.arrayType);
      enc.u64(e.value.length);
      for (const v of e.value) enc.scalar(e.arrayType, v, e.key);
    } else {
      enc.scalar(e.type, e.value, e.key);
    }
  }
  for (const t of infos) {
    enc.string(t.name);
    enc.u32(t.dims.length);
    for (const d of t.dims) enc.u64(d);
    enc.u32(t.type);
    enc.u64(t.offset);
  }
  const headerBytes = enc.length;
  const dataOffset = alignUp(headerBytes, alignment);
  const bytes = new Uint8Array(dataOffset);
  bytes.set(enc.bytes());
  return {
    bytes,
    layout: { headerBytes, dataOffset, alignment, tensors: infos, tensorBytes, fileBytes: dataOffset + offset },
  };
}

/** How writeGguf buffers its output. */
export interface WriteGgufOptions {
  /** Bytes per write (two buffers of this size are used, one filling while the other is written). Default 4 MiB. */
  chunkBytes?: number;
}

/**
 * Writes a GGUF v3 file: the header, then each tensor's data as its `fill` callback produces
 * it, streamed through two reusable buffers (one filled while the other is being written), so
 * the file may be far larger than memory. Returns the layout (whose fileBytes is the file's size).
 */
export async function writeGguf(
  path: string,
  kv: readonly GgufKv[],
  tensors: readonly GgufTensorSource[],
  options: WriteGgufOptions = {},
): Promise<GgufLayout> {
  const { bytes: header, layout } = encodeGgufHeader(kv, tensors);
  const chunkBytes = alignUp(Math.max(options.chunkBytes ?? 4 << 20, 4096), 4096);
  const fh = await open(path, "w");
  const out = new ChunkedWriter(fh, chunkBytes);
  try {
    await out.copy(header);
    for (const [i, t] of tensors.entries()) {
      const info = layout.tensors[i]!;
      await out.produce(info.bytes, (slice) => t.fill(slice));
      const end = info.offset + info.bytes;
      await out.produce(alignUp(end, layout.alignment) - end, (slice) => slice.fill(0));
    }
    await out.finish();
  } finally {
    await out.settle().catch(() => undefined); // after a failure: let the write in flight end first
    await fh.close();
  }
  return layout;
}

/** Two reusable buffers: one is filled while the other's write is in flight. */
class ChunkedWriter {
  readonly #fh: FileHandle;
  readonly #buffers: [Uint8Array, Uint8Array];
  #current = 0;
  #pos = 0;
  #filePos = 0;
  #pending: Promise<unknown> | undefined;

  constructor(fh: FileHandle, chunkBytes: number) {
    this.#fh = fh;
    // separate ArrayBuffers at offset 0, so typed-array views at element-aligned offsets are legal
    this.#buffers = [new Uint8Array(new ArrayBuffer(chunkBytes)), new Uint8Array(new ArrayBuffer(chunkBytes))];
  }

  /** Appends a copy of `bytes`. */
  copy(bytes: Uint8Array): Promise<void> {
    let done = 0;
    return this.produce(bytes.length, (slice) => {
      slice.set(bytes.subarray(done, done + slice.length));
      done += slice.length;
    });
  }

  /** Appends `n` bytes that `fill` writes, slice by slice, flushing full buffers. */
  async produce(n: number, fill: (slice: Uint8Array) => void): Promise<void> {
    let remaining = n;
    while (remaining > 0) {
      await this.#flushIfFull();
      const buf = this.#buffers[this.#current]!;
      const take = Math.min(remaining, buf.length - this.#pos);
      fill(buf.subarray(this.#pos, this.#pos + take));
      this.#pos += take;
      remaining -= take;
    }
  }

  async #flushIfFull(): Promise<void> {
    if (this.#pos === this.#buffers[this.#current]!.length) await this.#flush();
  }

  async finish(): Promise<void> {
    if (this.#pos > 0) await this.#flush();
    await this.settle();
  }

  /** Waits for the write in flight, if any (errors included). */
  async settle(): Promise<void> {
    const pending = this.#pending;
    this.#pending = undefined;
    await pending;
  }

  async #flush(): Promise<void> {
    const buf = this.#buffers[this.#current]!;
    const write = this.#fh.write(buf, 0, this.#pos, this.#filePos);
    this.#filePos += this.#pos;
    // the other buffer is about to be refilled: its write must be done first
    await this.settle();
    this.#pending = write;
    this.#current = 1 - this.#current;
    this.#pos = 0;
  }
}

/** A growable little-endian byte encoder for the header. */
class Encoder {
  #buf = new Uint8Array(1 << 16);
  #view = new DataView(this.#buf.buffer);
  #pos = 0;

  get length(): number {
    return this.#pos;
  }

  bytes(): Uint8Array {
    return this.#buf.subarray(0, this.#pos);
  }

  u32(v: number): void {
    const at = this.#reserve(4);
    this.#view.setUint32(at, v, true);
  }

  u64(v: number | bigint): void {
    const at = this.#reserve(8);
    this.#view.setBigUint64(at, BigInt(v), true);
  }

  string(s: string): void {
    const utf8 = textEncoder.encode(s);
    this.u64(utf8.length);
    const at = this.#reserve(utf8.length);
    this.#buf.set(utf8, at);
  }

  scalar(type: GgufScalarType, value: GgufValue, key: string): void {
    if (type === GgufType.STRING) {
      if (typeof value !== "string") throw new Error(`${key}: expected a string`);
      this.string(value);
      return;
    }
    // reserve first: growing the buffer replaces the view
    const at = this.#reserve(SCALAR_SIZE[type]);
    const v = this.#view;
    switch (type) {
      case GgufType.UINT8:
        v.setUint8(at, num(value, key));
        break;
      case GgufType.INT8:
        v.setInt8(at, num(value, key));
        break;
      case GgufType.UINT16:
        v.setUint16(at, num(value, key), true);
        break;
      case GgufType.INT16:
        v.setInt16(at, num(value, key), true);
        break;
      case GgufType.UINT32:
        v.setUint32(at, num(value, key), true);
        break;
      case GgufType.INT32:
        v.setInt32(at, num(value, key), true);
        break;
      case GgufType.FLOAT32:
        v.setFloat32(at, num(value, key), true);
        break;
      case GgufType.BOOL:
        if (typeof value !== "boolean") throw new Error(`${key}: expected a boolean`);
        v.setUint8(at, value ? 1 : 0);
        break;
      case GgufType.UINT64:
        v.setBigUint64(at, big(value, key), true);
        break;
      case GgufType.INT64:
        v.setBigInt64(at, big(value, key), true);
        break;
      case GgufType.FLOAT64:
        v.setFloat64(at, num(value, key), true);
        break;
    }
  }

  #reserve(n: number): number {
    const at = this.#pos;
    if (at + n > this.#buf.length) {
      const grown = new Uint8Array(Math.max(this.#buf.length * 2, at + n));
      grown.set(this.#buf.subarray(0, at));
      this.#buf = grown;
      this.#view = new DataView(grown.buffer);
    }
    this.#pos = at + n;
    return at;
  }
}

const textEncoder = new TextEncoder();

/** Bytes of each fixed-size scalar type. */
const SCALAR_SIZE: Readonly<Record<Exclude<GgufScalarType, typeof GgufType.STRING>, number>> = {
  [GgufType.UINT8]: 1,
  [GgufType.INT8]: 1,
  [GgufType.UINT16]: 2,
  [GgufType.INT16]: 2,
  [GgufType.UINT32]: 4,
  [GgufType.INT32]: 4,
  [GgufType.FLOAT32]: 4,
  [GgufType.BOOL]: 1,
  [GgufType.UINT64]: 8,
  [GgufType.INT64]: 8,
  [GgufType.FLOAT64]: 8,
};

function num(value: GgufValue, key: string): number {
  if (typeof value === "number") return value;
  if (typeof value === "bigint") return Number(value);
  throw new Error(`${key}: expected a number`);
}

function big(value: GgufValue, key: string): bigint {
  if (typeof value === "bigint") return value;
  if (typeof value === "number" && Number.isInteger(value)) return BigInt(value);
  throw new Error(`${key}: expected an integer`);
}
