export * from "./codec.js";
export * from "./connection.js";
export * from "./group-commit.js";
export * from "./kv.js";
export * from "./layout.js";
export * from "./schedule-codec.js";
export * from "./store.js";
export * from "./subjects.js";
export { writeCoalescing } from "./write-coalesce.js";
