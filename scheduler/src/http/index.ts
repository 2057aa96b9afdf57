export * from "./registry.js";
export * from "./route.js";
export { Router } from "./router.js";
export { DEFAULT_BODY_LIMIT, type HttpEdge, startHttpEdge } from "./server.js";
