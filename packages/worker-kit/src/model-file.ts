import { statSync } from "node:fs";
import { RbeeError } from "@rbee/contract";

/** The size of a worker's model file; a missing path is a 404 and a directory a 400, each saying what to pass. */
export function modelFileSize(path: string): number {
  let stat: ReturnType<typeof statSync>;
  try {
    stat = statSync(path);
  } catch {
    throw new RbeeError(`model file not found: ${path}; pass the path of a .gguf file with --model`, {
      statusCode: 404,
      code: "model_not_found",
    });
  }
  if (!stat.isFile()) {
    throw new RbeeError(`model path is not a file: ${path}; pass the path of a .gguf file with --model`, {
      statusCode: 400,
      code: "model_not_a_file",
    });
  }
  return stat.size;
}
