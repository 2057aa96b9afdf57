import { jsonCodec, TypedKv } from "@capa/bus";
import { pino } from "pino";
import { describe, expect, it, vi } from "vitest";
import { memoryKv } from "../market/memory-kv.test-helper.js";
import { EXPLAIN_PREFIX } from "../store/buckets.js";
import type { Explanation } from "./engine.js";
import { ExplanationStore } from "./explanations.js";

function explanation(outcome: Explanation["outcome"], decidedAtMs: number): Explanation {
  return {
    jobId: "j1",
    outcome,
    profile: "default",
    candidatesConsidered: 1,
    rejections: {},
    chosen: [],
    runnerUp: [],
    relaxation: "",
    preemptedTaskIds: [],
    summary: [outcome],
    decidedAtMs,
    seed: 1,
    estimatedCost: 0,
  };
}

describe("ExplanationStore", () => {
  it("writes without reading while it holds the stored revision, and never over a newer explanation", async () => {
    const kv = new TypedKv(memoryKv(), jsonCodec<Explanation>());
    const store = new ExplanationStore(kv, pino({ level: "silent" }));
    const reads = vi.spyOn(kv.kv, "get");
    const key = `${EXPLAIN_PREFIX}j1`;

    await store.record(explanation("pending", 1000)); // a job's first: a create
    await store.record(explanation("pending", 1100)); // the same decision: not written
    await store.record(explanation("placed", 1200)); // a new one: an update on the held revision
    expect(reads).not.toHaveBeenCalled();
    expect((await kv.get(key))?.value).toMatchObject({ outcome: "placed", decidedAtMs: 1200 });

    // Another replica (a new leader) stores a newer explanation: the held revision conflicts, the stored one wins.
    const stored = await kv.get(key);
    await kv.update(key, explanation("unplaceable", 5000), stored!.revision);
    reads.mockClear();
    await store.record(explanation("pending", 1300));
    expect(reads).toHaveBeenCalled();
    expect((await kv.get(key))?.value).toMatchObject({ outcome: "unplaceable", decidedAtMs: 5000 });

    // Not knowing the stored revision now, the next write reads first; a later decision replaces it.
    reads.mockClear();
    await store.record(explanation("placed", 6000));
    expect(reads).toHaveBeenCalled();
    expect((await kv.get(key))?.value).toMatchObject({ outcome: "placed", decidedAtMs: 6000 });
  });
});
