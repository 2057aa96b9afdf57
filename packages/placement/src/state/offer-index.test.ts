import { describe, expect, it } from "vitest";
import { mulberry32 } from "../rng.js";
import { agent } from "../test-fixtures.js";
import { ClusterState } from "./cluster-state.js";
import { Extreme, PRICE_MODES } from "./offer-index.js";

describe("Extreme", () => {
  it.each([
    { kind: "min" as const, ops: [], expected: Number.POSITIVE_INFINITY },
    { kind: "max" as const, ops: [], expected: Number.NEGATIVE_INFINITY },
    { kind: "min" as const, ops: [3, 1, 2], expected: 1 },
    { kind: "min" as const, ops: [3, 1, 1, -1], expected: 1 }, // one of two 1s leaves: still 1
    { kind: "min" as const, ops: [3, 1, 2, -1], expected: 2 }, // the last 1 leaves: the next distinct value
    { kind: "max" as const, ops: [3, 1, 2, -3], expected: 2 },
    { kind: "max" as const, ops: [3, -3], expected: Number.NEGATIVE_INFINITY },
    { kind: "max" as const, ops: [3, -7], expected: 3 }, // removing a value never added changes nothing
  ])("$kind after $ops is $expected (negative = remove)", ({ kind, ops, expected }) => {
    const e = new Extreme(kind);
    for (const op of ops) {
      if (op < 0) e.remove(-op);
      else e.add(op);
    }
    expect(e.value).toBe(expected);
  });
});

describe("offer index under churn", () => {
  it("keeps every bucket's largest VRAM and every domain's lowest price equal to a recount of its offers", () => {
    const rng = mulberry32(7);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;
    const state = new ClusterState();
    const live = new Set<string>();
    let checks = 0;
    for (let step = 0; step < 3000; step++) {
      const id = `a${Math.floor(rng() * 40)}`;
      if (live.has(id) && rng() < 0.3) {
        state.removeAgent(id);
        live.delete(id);
      } else {
        const base = agent(id, {
          gpus: "4xH100-80GB",
          region: pick(["us-east", "eu-west"]),
          zone: pick(["z1", "z2", "z3"]),
          prices: { "H100-80GB": [pick(["1.90", "2.00", "2.49"]), pick(["0.80", "1.20", "3.00"])] },
        });
        const vramMib = pick([40_960, 81_920, 95_000]);
        state.upsertAgent({ ...base, gpus: base.gpus.map((g) => ({ ...g, vramMib })) });
        live.add(id);
      }
      for (const mode of PRICE_MODES)
        for (const bucket of state.indexes[mode].buckets.values()) {
          const offers = [...bucket.domains.values()].flatMap((d) => d.offers);
          expect(bucket.maxVramMib).toBe(Math.max(0, ...offers.map((o) => o.minVramMib)));
          for (const d of bucket.domains.values())
            expect(d.minPrice).toBe(Math.min(...d.offers.map((o) => o.priceIn(mode)!.price)));
          checks++;
        }
    }
    expect(checks).toBeGreaterThan(3000);
  });
});
