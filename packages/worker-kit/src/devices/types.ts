/** What a command printed and how it ended. `stderr` is optional so test runners can leave it out. */
export interface CommandResult {
  stdout: string;
  stderr?: string;
  exitCode: number;
}

/**
 * Runs one command with a time limit. Answers `null` when the command does not exist or did not
 * finish in time; never throws. Detection takes one as an option so tests can replay recorded outputs.
 */
export type CommandRunner = (cmd: string, args: string[], timeoutMs: number) => Promise<CommandResult | null>;

/** Receives one line a person can act on, e.g. "nvidia-smi exited with code 9: ...". */
export type WarningSink = (message: string) => void;

/** Options every parser of a vendor tool's output takes. */
export interface ParseOptions {
  /** Told about output that could not be read; the parser then skips it instead of throwing. */
  onWarning?: WarningSink;
}
