export * from "./deploy.js";
export * from "./plan.js";
export * from "./render.js";
export * from "./replicas.js";
