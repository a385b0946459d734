import { GgufFormatError } from "./errors.js";
import {
  alignUp,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  type GgufKv,
  type GgufScalarType,
  type GgufTensorInfo,
  GgufType,
  type GgufValue,
} from "./gguf-format.js";

/** What the header of a GGUF file says: its metadata and where each tensor's data lies. */
export interface GgufHeader {
  version: number;
  /** Every key/value pair in file order, with its stored type (to copy pairs into another file). */
  kv: GgufKv[];
  /** The same pairs as plain values: 64-bit integers are bigints, arrays JS arrays. */
  metadata: Map<string, GgufValue>;
  tensors: GgufTensorInfo[];
  /** `general.alignment`, or 32. */
  alignment: number;
  /** Bytes of the magic, the metadata and the tensor infos: the header proper, before its padding. */
  headerBytes: number;
  /** Where the tensor data section starts in the file (tensor offsets are relative to it). */
  dataOffset: number;
}

/** The bytes given end before the header does: read more of the file and try again. */
export class OutOfData extends Error {}

/**
 * The header if `bytes` (the start of a file) holds all of it; undefined if more of the file is
 * needed. `isWholeFile` says there is no more: a header that runs past the end is then an error.
 */
export function tryParseGgufHeader(bytes: Uint8Array, isWholeFile: boolean): GgufHeader | undefined {
  try {
    return new HeaderParser(bytes).parse();
  } catch (err) {
    if (err instanceof OutOfData && !isWholeFile) return undefined;
    if (err instanceof OutOfData) {
      throw new GgufFormatError("not a GGUF file: the header runs past the end of the file");
    }
    throw err;
  }
}

const decoder = new TextDecoder("utf-8");

class HeaderParser {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  #pos = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  parse(): GgufHeader {
    if (this.#u32() !== GGUF_MAGIC) throw new GgufFormatError("not a GGUF file (bad magic)");
    const version = this.#u32();
    if (version < 2 || version > 3) throw new GgufFormatError(`unsupported GGUF version ${version}`);
    const tensorCount = this.#u64n();
    const kvCount = this.#u64n();

    const kv: GgufKv[] = [];
    const metadata = new Map<string, GgufValue>();
    for (let i = 0; i < kvCount; i++) {
      const key = this.#string();
      const type = this.#u32();
      let entry: GgufKv;
      if (type === GgufType.ARRAY) {
        const arrayType = this.#u32();
        if (arrayType === GgufType.ARRAY) throw new GgufFormatError(`${key}: nested arrays are not supported`);
        const scalarType = checkScalarType(arrayType, key);
        const count = this.#u64n();
        // every element takes at least one byte: a larger count means the header goes on past these bytes
        if (count > this.#bytes.byteLength - this.#pos) throw new OutOfData();
        const value: GgufValue[] = new Array(count);
        for (let j = 0; j < count; j++) value[j] = this.#scalar(scalarType);
        entry = { key, type: GgufType.ARRAY, arrayType: scalarType, value };
      } else {
        const scalarType = checkScalarType(type, key);
        entry = { key, type: scalarType, value: this.#scalar(scalarType) };
      }
      kv.push(entry);
      metadata.set(key, entry.value);
    }

    const tensors: GgufTensorInfo[] = [];
    for (let i = 0; i < tensorCount; i++) {
      const name = this.#string();
      const nDims = this.#u32();
      if (nDims > 8) throw new GgufFormatError(`tensor ${name}: ${nDims} dimensions (ggml has at most 4)`);
      const dims: number[] = [];
      for (let d = 0; d < nDims; d++) dims.push(this.#u64n());
      const type = this.#u32();
      const offset = this.#u64n();
      tensors.push({ name, dims, type, offset });
    }

    const alignmentValue = metadata.get("general.alignment");
    const alignment =
      typeof alignmentValue === "number" && alignmentValue > 0 ? alignmentValue : GGUF_DEFAULT_ALIGNMENT;
    const headerBytes = this.#pos;
    return { version, kv, metadata, tensors, alignment, headerBytes, dataOffset: alignUp(headerBytes, alignment) };
  }

  #need(n: number): number {
    const at = this.#pos;
    if (at + n > this.#bytes.byteLength) throw new OutOfData();
    this.#pos = at + n;
    return at;
  }

  #u32(): number {
    return this.#view.getUint32(this.#need(4), true);
  }

  /** A u64 that must fit a JS number (counts, dims, offsets). */
  #u64n(): number {
    const v = this.#view.getBigUint64(this.#need(8), true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new GgufFormatError(`GGUF value too large: ${v}`);
    return Number(v);
  }

  #string(): string {
    const len = this.#u64n();
    const at = this.#need(len);
    return decoder.decode(this.#bytes.subarray(at, at + len));
  }

  #scalar(type: GgufScalarType): GgufValue {
    const v = this.#view;
    switch (type) {
      case GgufType.UINT8:
        return v.getUint8(this.#need(1));
      case GgufType.INT8:
        return v.getInt8(this.#need(1));
      case GgufType.UINT16:
        return v.getUint16(this.#need(2), true);
      case GgufType.INT16:
        return v.getInt16(this.#need(2), true);
      case GgufType.UINT32:
        return v.getUint32(this.#need(4), true);
      case GgufType.INT32:
        return v.getInt32(this.#need(4), true);
      case GgufType.FLOAT32:
        return v.getFloat32(this.#need(4), true);
      case GgufType.BOOL:
        return v.getUint8(this.#need(1)) !== 0;
      case GgufType.STRING:
        return this.#string();
      case GgufType.UINT64:
        return v.getBigUint64(this.#need(8), true);
      case GgufType.INT64:
        return v.getBigInt64(this.#need(8), true);
      case GgufType.FLOAT64:
        return v.getFloat64(this.#need(8), true);
    }
  }
}

function checkScalarType(type: number, key: string): GgufScalarType {
  if (type > GgufType.FLOAT64 || type === GgufType.ARRAY) {
    throw new GgufFormatError(`${key}: unknown GGUF value type ${type}`);
  }
  return type as GgufScalarType;
}
