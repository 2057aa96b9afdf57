import type { QuoteResult } from "@capa/market";
import { describe, expect, it } from "vitest";
import { quoteToPb } from "./market.js";

const base: QuoteResult = {
  feasibleOffers: 2,
  regions: [],
  estimatedHourly: 4_780_000,
  estimatedTotal: 4_780_000,
  estimatedStartMs: 1_700_000_000_000,
  startBasis: "queue",
  startDetail: "after 3 jobs queued ahead take the GPUs it needs",
  queuedAhead: 3,
  reasonCode: "none",
  reason: "",
  cheapest: undefined,
  chosen: [],
};

describe("quoteToPb", () => {
  it("carries the start basis, its detail and the jobs queued ahead", () => {
    expect(quoteToPb(base)).toMatchObject({
      estimatedStartUnixMs: 1_700_000_000_000,
      startBasis: "queue",
      startDetail: "after 3 jobs queued ahead take the GPUs it needs",
      queuedAhead: 3,
    });
  });

  it("sends 0 for a start that cannot be estimated, with the basis saying why", () => {
    const q = quoteToPb({
      ...base,
      estimatedStartMs: undefined,
      startBasis: "unknown",
      startDetail: "held",
      queuedAhead: 0,
    });
    expect([q.estimatedStartUnixMs, q.startBasis, q.startDetail, q.queuedAhead]).toEqual([0, "unknown", "held", 0]);
  });
});
