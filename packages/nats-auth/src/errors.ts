/** One error class per failure mode, each with its cause (nats.js style). */
export class NatsAuthError extends Error {
  override name = "NatsAuthError";
}

/** An agent id, region or key that cannot become a NATS user (not a subject token, not a user nkey). */
export class InvalidIdentityError extends NatsAuthError {
  override name = "InvalidIdentityError";
}

/** The auth dir is unreadable or its files are not what capa wrote (a bad agents.json, a seed that is not one). */
export class AuthDirError extends NatsAuthError {
  override name = "AuthDirError";
}
