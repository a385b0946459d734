import { closeSync, openSync, readSync } from "node:fs";
import { readGgufHeaderSync } from "@rbee/gguf";
import { GGML_TYPE_SIZE, type GgmlType, type GgufKv } from "./gguf-format.js";
import { type GgufLayout, type GgufTensorSource, writeGguf } from "./write-gguf.js";

/** What rewriteGgufMetadata changes in the copy. */
export interface GgufMetadataChanges {
  /** Pairs to add, or to replace where the source has the key (in place, keeping the order). */
  set?: readonly GgufKv[];
  /** Keys to leave out. */
  remove?: readonly string[];
}

/**
 * Copies a GGUF file with its metadata changed and its tensors byte for byte: the way to give a
 * real model's weights another chat template, name or context length. Only F32 and F16 tensors
 * can be copied (what the test models hold).
 */
export async function rewriteGgufMetadata(
  source: string,
  destination: string,
  changes: GgufMetadataChanges,
): Promise<GgufLayout> {
  const { header } = readGgufHeaderSync(source);
  const set = new Map((changes.set ?? []).map((e) => [e.key, e]));
  const remove = new Set(changes.remove ?? []);
  const kv: GgufKv[] = [];
  for (const e of header.kv) {
    if (remove.has(e.key)) continue;
    const replacement = set.get(e.key);
    kv.push(replacement ?? e);
    set.delete(e.key);
  }
  kv.push(...set.values());

  const fd = openSync(source, "r");
  try {
    const tensors: GgufTensorSource[] = header.tensors.map((t) => {
      const size = GGML_TYPE_SIZE[t.type as GgmlType];
      if (size === undefined)
        throw new Error(`${source}: tensor ${t.name} has ggml type ${t.type}; only F32 and F16 copy`);
      let position = header.dataOffset + t.offset;
      return {
        name: t.name,
        dims: t.dims,
        type: t.type as GgmlType,
        fill: (out) => {
          let done = 0;
          while (done < out.byteLength) {
            const n = readSync(fd, out, done, out.byteLength - done, position);
            if (n === 0) throw new Error(`${source} ends inside tensor ${t.name}`);
            done += n;
            position += n;
          }
        },
      };
    });
    return await writeGguf(destination, kv, tensors);
  } finally {
    closeSync(fd);
  }
}
