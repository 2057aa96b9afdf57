// @capa/ledger: the JetStream ledger (charges, payouts, fees; exactly once), tenant budgets in KV with CAS,
// and Ed25519-signed receipts that verify offline.
export * from "./budget-store.js";
export * from "./codec.js";
export * from "./ledger.js";
export * from "./receipts.js";
export * from "./stream-io.js";
export * from "./subjects.js";
export * from "./usage.js";
