// @capa/market: the marketplace core. Pure: no I/O, no clock (every function takes `nowMs`), no randomness.
export * from "./budget.js";
export * from "./budget-book.js";
export * from "./errors.js";
export * from "./glob.js";
export * from "./metering.js";
export * from "./offers.js";
export * from "./order-book.js";
export * from "./prices.js";
export * from "./quote.js";
export * from "./receipt.js";
export * from "./settlement.js";
export * from "./stats.js";
