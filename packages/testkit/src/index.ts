export * from "./attack-table.js";
export * from "./fake-nvidia-smi.js";
export * from "./nats-server.js";
export * from "./processes.js";
export * from "./supercluster.js";
export * from "./wait.js";
