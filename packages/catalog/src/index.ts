export * from "./builtin.js";
export * from "./catalog.js";
export * from "./csv.js";
export * from "./load.js";
export * from "./models.js";
export * from "./regions.js";
