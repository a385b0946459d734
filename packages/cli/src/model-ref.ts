import { statSync } from "node:fs";
import { resolve } from "node:path";

/**
 * What `-m` names, as the queen takes it: a file on this machine (a GGUF) is sent as its absolute
 * path, which the hive adds to its catalog; anything else is a model id.
 */
export function modelRef(model: string): string {
  try {
    if (statSync(model).isFile()) return resolve(model);
  } catch {
    // not a file here: a model id (or a path on another machine)
  }
  return model;
}
