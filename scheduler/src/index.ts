/** @capa/scheduler: the scheduling service. The CLI and tests start it with `startScheduler`. */
export type { SchedulerConfig } from "./config.js";
export { DEFAULT_GRPC_ADDRESS } from "./config.js";
export type { MarketHandlers } from "./grpc/market.js";
export { HttpError, type HttpRequest, type HttpResponse, type HttpRoute } from "./http/index.js";
/** Billing totals from the ledger stream (the metrics' source; exported for its integration test). */
export { BillingFeed } from "./observability/index.js";
export { REPLAY_LIMITS, ReplayRunner } from "./replay/index.js";
export { type SchedulerExtensions, type SchedulerHandle, startScheduler } from "./scheduler.js";
/** Batched acks of the report consumers (tests against a real nats-server). */
export { AckAllTracker, ackAllTrackerFor } from "./tasks/ack-all.js";
/** The capa_requests key of a tenant's request id (tests and tools that inspect the store). */
export { requestKey } from "./util/ids.js";
