import { jsonCodec, TypedKv } from "@capa/bus";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { Explanation } from "../planner/engine.js";
import { ExplanationStore } from "../planner/explanations.js";
import { EXPLAIN_PREFIX } from "../store/buckets.js";

/** An in-memory KV with JetStream's CAS semantics and no blind put; `beforeUpdate` lets another writer race. */
class CasKv {
  readonly entries = new Map<string, { value: Uint8Array; revision: number }>();
  private seq = 0;
  beforeUpdate: (() => void) | undefined;
  // One store, no replicas: the leader read is the same read.
  getLatest(key: string) {
    return this.get(key);
  }
  async get(key: string) {
    const e = this.entries.get(key);
    return e && { key, value: e.value, revision: e.revision, operation: "PUT", length: e.value.length };
  }
  async create(key: string, value: Uint8Array): Promise<number> {
    if (this.entries.has(key)) throw new Error("wrong last sequence: 1");
    return this.set(key, value);
  }
  async update(key: string, value: Uint8Array, revision: number): Promise<number> {
    const race = this.beforeUpdate;
    this.beforeUpdate = undefined;
    race?.();
    if (this.entries.get(key)?.revision !== revision) throw new Error("wrong last sequence: 1");
    return this.set(key, value);
  }
  set(key: string, value: Uint8Array): number {
    this.entries.set(key, { value, revision: ++this.seq });
    return this.seq;
  }
}

const codec = jsonCodec<Explanation>();

function explanation(jobId: string, decidedAtMs: number, outcome: Explanation["outcome"] = "pending"): Explanation {
  return { jobId, outcome, decidedAtMs, summary: [outcome] } as unknown as Explanation;
}

function stores() {
  const raw = new CasKv();
  const kv = new TypedKv(raw as unknown as TypedKv<Explanation>["kv"], codec);
  const make = () => new ExplanationStore(kv, pino({ level: "silent" }));
  const stored = () => {
    const e = raw.entries.get(`${EXPLAIN_PREFIX}j1`);
    return e && { ...codec.decode(e.value), revision: e.revision };
  };
  return { raw, make, stored };
}

describe("explanations are persisted with CAS", () => {
  it("creates, then updates on the stored revision; an unchanged decision is not rewritten", async () => {
    const { make, stored } = stores();
    const s = make();
    await s.record(explanation("j1", 100));
    expect(stored()).toMatchObject({ decidedAtMs: 100, revision: 1 });
    await s.record(explanation("j1", 200)); // same decision, later: not written again
    expect(stored()).toMatchObject({ decidedAtMs: 100, revision: 1 });
    await s.record(explanation("j1", 300, "placed"));
    expect(stored()).toMatchObject({ decidedAtMs: 300, outcome: "placed", revision: 2 });
  });

  it("never replaces a newer explanation written by another replica", async () => {
    const { make, stored } = stores();
    const newLeader = make();
    const oldLeader = make();
    await newLeader.record(explanation("j1", 500, "placed"));
    await oldLeader.record(explanation("j1", 400, "pending"));
    expect(stored()).toMatchObject({ decidedAtMs: 500, outcome: "placed" });
  });

  it("a write that races another one re-reads and keeps the newer decision", async () => {
    const { raw, make, stored } = stores();
    const a = make();
    await a.record(explanation("j1", 100, "pending"));
    // Between a's read and its write, another replica stores a newer decision: a's CAS fails, it re-reads, yields.
    raw.beforeUpdate = () => raw.set(`${EXPLAIN_PREFIX}j1`, codec.encode(explanation("j1", 900, "unplaceable")));
    await a.record(explanation("j1", 200, "placed"));
    expect(stored()).toMatchObject({ decidedAtMs: 900, outcome: "unplaceable" });
  });
});
