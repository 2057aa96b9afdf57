export * from "./errors.js";
export * from "./format.js";
export * from "./grpc.js";
export * from "./local/fleet.js";
export * from "./local/prices.js";
export { buildProgram, CLI_VERSION } from "./program.js";
export * from "./render.js";
export * from "./spec.js";
export * from "./states.js";
