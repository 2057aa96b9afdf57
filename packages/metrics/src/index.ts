/**
 * @capa/metrics: what the scheduler and the agent share about Prometheus exposition. The endpoint (GET /metrics on
 * its own listener, so that it can bind to a cluster-internal address while the API listens elsewhere), Node's
 * default process metrics, and the NATS connection events both processes count.
 */
export { followNatsStatus, type NatsStatusSource } from "./nats-status.js";
export { type MetricsServer, serveMetrics } from "./serve.js";
