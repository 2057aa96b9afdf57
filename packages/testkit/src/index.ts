export * from "./fake-nvidia-smi.js";
export * from "./nats-server.js";
export * from "./wait.js";
