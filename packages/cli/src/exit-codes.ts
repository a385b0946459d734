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
