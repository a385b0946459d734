import { accessSync, closeSync, constants, openSync, readSync, statSync } from "node:fs";
import { EngineBinaryError } from "./engine-errors.js";

/** First bytes of the programs an operating system runs: ELF, Mach-O (32/64-bit, both byte orders, fat), PE, scripts. */
const MAGIC: readonly number[][] = [
  [0x7f, 0x45, 0x4c, 0x46], // ELF
  [0xfe, 0xed, 0xfa, 0xce],
  [0xfe, 0xed, 0xfa, 0xcf],
  [0xce, 0xfa, 0xed, 0xfe],
  [0xcf, 0xfa, 0xed, 0xfe],
  [0xca, 0xfe, 0xba, 0xbe], // Mach-O universal
  [0x4d, 0x5a], // MZ (Windows)
  [0x23, 0x21], // #! script
];

/**
 * Checks, before spawning it, that `binary` is a file this user may execute and that it starts like
 * a program. Without the last check a corrupt file would not fail with "exec format error": the C
 * library's execvp and /bin/sh run a file the kernel refuses (ENOEXEC) as a shell script.
 * `hint` says what to do about it (how to build or register the engine).
 */
export function checkEngineBinary(binary: string, hint: string): void {
  let stat: ReturnType<typeof statSync>;
  try {
    stat = statSync(binary);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new EngineBinaryError(binary, code === "ENOENT" ? "no such file" : `cannot stat it (${code})`, hint);
  }
  if (!stat.isFile()) throw new EngineBinaryError(binary, "it is not a file", hint);
  try {
    accessSync(binary, constants.X_OK);
  } catch {
    throw new EngineBinaryError(binary, "it is not executable (chmod +x it, or check its owner)", hint);
  }
  const head = new Uint8Array(4);
  let n = 0;
  try {
    const fd = openSync(binary, "r");
    try {
      n = readSync(fd, head, 0, 4, 0);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    throw new EngineBinaryError(binary, `cannot read it (${(err as NodeJS.ErrnoException).code})`, hint);
  }
  const ok = MAGIC.some((m) => m.length <= n && m.every((b, i) => head[i] === b));
  if (!ok) {
    throw new EngineBinaryError(
      binary,
      "it is not a program this system can run (exec format error: a corrupt file, or one built for another system)",
      hint,
    );
  }
}
