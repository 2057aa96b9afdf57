/** One error class per failure mode (nats.js style); each names where in its input the problem is. */

/** A trace or fleet CSV that cannot be read: `line` (1 = the header) and `column` (1-based, 0 = the whole row). */
export class InputError extends Error {
  override name = "InputError";
  constructor(
    readonly file: string,
    readonly line: number,
    readonly column: number,
    readonly columnName: string,
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    const where = column > 0 ? `line ${line}, column ${column} (${columnName})` : `line ${line}`;
    super(`${file}: ${where}: ${detail}`, options);
  }
}

export class TraceError extends InputError {
  override name = "TraceError";
}

export class FleetError extends InputError {
  override name = "FleetError";
}

/** A replay that cannot run as asked (no policies, an empty fleet, an unknown baseline). */
export class ReplayConfigError extends Error {
  override name = "ReplayConfigError";
}
