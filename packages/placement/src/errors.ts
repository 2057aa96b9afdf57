/** Errors the placement package throws. Each names what was wrong so the caller can report it as is. */

/** An allocation would take a GPU that is already taken, or one the agent does not have. Never swallow it. */
export class OverCommitError extends Error {
  override name = "OverCommitError";
  constructor(
    message: string,
    readonly agentId: string,
    readonly gpuIndex: number,
  ) {
    super(message);
  }
}

/** A profile (JSON/YAML) is invalid; `field` is the dotted path of the offending field, e.g. `weights.cost`. */
export class ProfileError extends Error {
  override name = "ProfileError";
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(field ? `${field}: ${message}` : message);
  }
}

/** A profile name that the engine does not know. */
export class UnknownProfileError extends Error {
  override name = "UnknownProfileError";
  constructor(readonly profile: string) {
    super(`unknown placement profile "${profile}"`);
  }
}
