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

/** One line, whatever the error carried: scripts read the first line of stderr. */
export function oneLine(text: string): string {
  return text
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter(Boolean)
    .join("; ");
}
