/** What `rbee` exits with; scripts can rely on these. */
export const EXIT = {
  ok: 0,
  /** The operation failed (the message says why). */
  failure: 1,
  /** A bad command, flag or argument. */
  usage: 2,
  /** The queen (or another daemon) could not be reached. */
  unavailable: 3,
  /** The model, worker or hive named does not exist. */
  notFound: 4,
  /** Interrupted by Ctrl+C. */
  interrupted: 130,
} as const;

/** An error that ends the command with one line on stderr and a chosen exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failure,
  ) {
    super(message);
    this.name = "CliError";
  }
}

/**
 * The exit code for an error the queen (or a job) reported: 4 when the thing named does not exist
 * (`model_not_found`, `worker_not_found`, any 404), 3 when a peer could not be reached, else 1.
 */
export function exitCodeForError(code: string, httpStatus?: number): number {
  if (code === "unreachable") return EXIT.unavailable;
  if (code.endsWith("not_found") || httpStatus === 404) return EXIT.notFound;
  return EXIT.failure;
}
