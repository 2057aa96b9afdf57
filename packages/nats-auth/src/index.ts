/**
 * @capa/nats-auth: per-agent NATS users (nkeys) and the nats-server authorization block that confines them.
 * Pure key generation, permission templates and rendering, plus the operator's auth directory (enrolment).
 */
export * from "./auth-dir.js";
export * from "./errors.js";
export * from "./keys.js";
export * from "./permissions.js";
export * from "./render.js";
