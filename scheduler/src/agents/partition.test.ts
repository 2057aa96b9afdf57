import { describe, expect, it } from "vitest";
import { decideLosses, type SilenceView } from "./partition.js";

const view = (agentId: string, region: string, lastSeenMs: number, expired: boolean, lost = false): SilenceView => ({
  agentId,
  region,
  lastSeenMs,
  expired,
  lost,
  timeoutMs: 6_000,
});
const NOW = 100_000;
const GRACE = 60_000;

describe("decideLosses: a silent agent is lost, a silent region is held for the grace", () => {
  it("loses one dead agent of a region whose others are heard", () => {
    const d = decideLosses([view("a", "eu", NOW - 7_000, true), view("b", "eu", NOW - 500, false)], NOW, GRACE);
    expect(d).toEqual({ lose: ["a"], held: [] });
  });

  it("holds every agent of a region that went silent together, within the grace", () => {
    const d = decideLosses(
      [view("a", "us", NOW - 7_000, true), view("b", "us", NOW - 6_800, true), view("c", "eu", NOW - 100, false)],
      NOW,
      GRACE,
    );
    expect(d).toEqual({ lose: [], held: [{ region: "us", agents: 2, silentMs: 6_800 }] });
  });

  it("holds a region whose other agents missed their last heartbeats too (heartbeats are not in step)", () => {
    // Cut at NOW - 7 000: a's last heartbeat came just before, b's 1.8 s later than a's.
    const d = decideLosses([view("a", "us", NOW - 7_000, true), view("b", "us", NOW - 5_200, false)], NOW, GRACE);
    expect(d).toEqual({ lose: [], held: [{ region: "us", agents: 2, silentMs: 5_200 }] });
  });

  it("loses them once the region has been silent for the grace", () => {
    const d = decideLosses([view("a", "us", NOW - 61_000, true), view("b", "us", NOW - 60_000, true)], NOW, GRACE);
    expect(d).toEqual({ lose: ["a", "b"], held: [] });
  });

  it("gives no grace to a region with one live agent (a dead machine looks the same as a cut link)", () => {
    const d = decideLosses([view("a", "us", NOW - 7_000, true), view("b", "us", NOW - 90_000, true, true)], NOW, GRACE);
    expect(d).toEqual({ lose: ["a"], held: [] });
  });

  it("holds every region when all are silent (NATS itself down), each on its own clock", () => {
    const d = decideLosses(
      [
        view("a", "us", NOW - 7_000, true),
        view("b", "us", NOW - 7_000, true),
        view("c", "eu", NOW - 8_000, true),
        view("d", "eu", NOW - 9_000, true),
      ],
      NOW,
      GRACE,
    );
    expect(d.lose).toEqual([]);
    expect(d.held.map((h) => h.region).sort()).toEqual(["eu", "us"]);
  });
});
