import { execFile } from "node:child_process";
import type { CommandResult, WarningSink } from "./types.js";
import { MIB } from "./units.js";

/**
 * The default {@link CommandRunner}: `execFile` with a time limit, no shell. Answers `null` when the
 * command is not installed (ENOENT, said to nobody: that is the normal case on most machines), when
 * it did not finish within `timeoutMs` (it is killed and `onWarning` is told), or when it could not
 * be started at all. A command that ran and failed answers its exit code and output. Never throws.
 */
export function runCommand(
  cmd: string,
  args: string[],
  timeoutMs: number,
  onWarning?: WarningSink,
): Promise<CommandResult | null> {
  return new Promise((resolve) => {
    try {
      execFile(
        cmd,
        args,
        { timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 32 * MIB, encoding: "utf8", windowsHide: true },
        (error, stdout, stderr) => {
          if (error === null) {
            resolve({ stdout, stderr, exitCode: 0 });
            return;
          }
          if (error.code === "ENOENT") {
            resolve(null);
            return;
          }
          if (error.killed === true || (error.signal !== undefined && error.signal !== null)) {
            onWarning?.(`${cmd} did not finish within ${timeoutMs} ms and was stopped; its devices are skipped`);
            resolve(null);
            return;
          }
          if (typeof error.code === "number") {
            resolve({ stdout, stderr, exitCode: error.code });
            return;
          }
          onWarning?.(`${cmd} could not be run (${error.message}); its devices are skipped`);
          resolve(null);
        },
      );
    } catch (err) {
      onWarning?.(`${cmd} could not be started (${err instanceof Error ? err.message : String(err)})`);
      resolve(null);
    }
  });
}
