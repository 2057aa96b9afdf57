// @capa/ledger: the JetStream ledger, budgets in KV, and Ed25519 receipts (filled in next).
export {};
