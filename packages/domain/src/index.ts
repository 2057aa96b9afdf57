export * from "./agent.js";
export * from "./assignment.js";
export * from "./errors.js";
export * from "./gpu.js";
export * from "./job.js";
export * from "./money.js";
export * from "./validation.js";
export * from "./version.js";
