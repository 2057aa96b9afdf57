/**
 * A failure the CLI reports as one line (`capa: <message>`) and a non-zero exit status. Commands throw it;
 * main.ts is the only place that prints it and exits.
 */
export class CliError extends Error {
  override name = "CliError";
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** A command line that cannot be run as given (a missing or malformed flag or argument): exit status 2. */
export class UsageError extends CliError {
  override name = "UsageError";
  constructor(message: string) {
    super(message, USAGE_EXIT_CODE);
  }
}

/** Exit statuses: 0 ok, 1 a runtime failure (the scheduler refused, could not be reached, ...), 2 a usage error. */
export const USAGE_EXIT_CODE = 2;

/** One line, whatever the error carried: scripts read the first line of stderr. */
export function oneLine(text: string): string {
  return text
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter(Boolean)
    .join("; ");
}
