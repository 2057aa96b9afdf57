// @capa/auth: identities, roles, the permission table, and API keys (format, hashing, the in-memory key table).
// Pure apart from node:crypto; the scheduler's gRPC edge and key store use it.
export * from "./authenticator.js";
export * from "./credentials.js";
export * from "./errors.js";
export * from "./keys.js";
export * from "./permissions.js";
export * from "./principal.js";
export * from "./roles.js";
