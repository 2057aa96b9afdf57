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
  it("loses one dead agent as soon as another agent of its region is heard after its deadline", () => {
    // a's deadline: NOW - 7 000 + 6 000 = NOW - 1 000; b was heard at NOW - 500, after it.
    const d = decideLosses([view("a", "eu", NOW - 7_000, true), view("b", "eu", NOW - 500, false)], NOW, GRACE);
    expect(d).toEqual({ lose: ["a"], held: [] });
  });

  it("holds a just-expired agent until its region shows it is reachable (b not heard since a's deadline)", () => {
    const d = decideLosses([view("a", "eu", NOW - 6_100, true), view("b", "eu", NOW - 1_500, false)], NOW, GRACE);
    expect(d).toEqual({ lose: [], held: [{ region: "eu", agents: 2, silentMs: 1_500 }] });
  });

  it("holds every agent of a region that went silent together, within the grace", () => {
    const d = decideLosses(
      [view("a", "us", NOW - 7_000, true), view("b", "us", NOW - 6_800, true), view("c", "eu", NOW - 100, false)],
      NOW,
      GRACE,
    );
    expect(d).toEqual({ lose: [], held: [{ region: "us", agents: 2, silentMs: 6_800 }] });
  });

  it("holds a cut region however its heartbeats were phased (b's last came 3.5 s after a's, before the cut)", () => {
    const d = decideLosses([view("a", "us", NOW - 7_000, true), view("b", "us", NOW - 3_500, false)], NOW, GRACE);
    expect(d).toEqual({ lose: [], held: [{ region: "us", agents: 2, silentMs: 3_500 }] });
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
