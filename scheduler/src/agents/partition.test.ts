import { describe, expect, it } from "vitest";
import { decideLosses, type SilenceView } from "./partition.js";

const view = (agentId: string, region: string, lastSeenMs: number, expired: boolean, lost = false): SilenceView => ({
  agentId,
  region,
  lastSeenMs,
  aliveAtMs: lastSeenMs,
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
    expect({ lose: d.lose, held: d.held }).toEqual({ lose: ["a"], held: [] });
  });

  it("holds a just-expired agent until its region shows it is reachable (b not heard since a's deadline)", () => {
    const d = decideLosses([view("a", "eu", NOW - 6_100, true), view("b", "eu", NOW - 1_500, false)], NOW, GRACE);
    expect({ lose: d.lose, held: d.held }).toEqual({ lose: [], held: [{ region: "eu", agents: 2, silentMs: 1_500 }] });
  });

  it("holds every agent of a region that went silent together, within the grace", () => {
    const d = decideLosses(
      [view("a", "us", NOW - 7_000, true), view("b", "us", NOW - 6_800, true), view("c", "eu", NOW - 100, false)],
      NOW,
      GRACE,
    );
    expect({ lose: d.lose, held: d.held }).toEqual({ lose: [], held: [{ region: "us", agents: 2, silentMs: 6_800 }] });
  });

  it("holds a cut region however its heartbeats were phased (b's last came 3.5 s after a's, before the cut)", () => {
    const d = decideLosses([view("a", "us", NOW - 7_000, true), view("b", "us", NOW - 3_500, false)], NOW, GRACE);
    expect({ lose: d.lose, held: d.held }).toEqual({ lose: [], held: [{ region: "us", agents: 2, silentMs: 3_500 }] });
  });

  it("loses them once the region has been silent for the grace", () => {
    const d = decideLosses([view("a", "us", NOW - 61_000, true), view("b", "us", NOW - 60_000, true)], NOW, GRACE);
    expect({ lose: d.lose, held: d.held }).toEqual({ lose: ["a", "b"], held: [] });
  });

  it("gives no grace to a region with one live agent (a dead machine looks the same as a cut link)", () => {
    const d = decideLosses([view("a", "us", NOW - 7_000, true), view("b", "us", NOW - 90_000, true, true)], NOW, GRACE);
    expect({ lose: d.lose, held: d.held }).toEqual({ lose: ["a"], held: [] });
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

  describe("a cut region coming back agent by agent", () => {
    // The cut began at NOW - 20 000 (both agents' last heartbeats); the liveness pass runs every second.
    const cutPass = decideLosses(
      [view("a", "us", NOW - 20_000, true), view("b", "us", NOW - 20_100, true), view("c", "eu", NOW - 100, false)],
      NOW,
      GRACE,
    );

    it("remembers a wholly silent region as cut, and holds it", () => {
      expect(cutPass.lose).toEqual([]);
      expect([...cutPass.cuts]).toEqual([["us", { lastSignMs: NOW - 20_000 }]]);
    });

    it("does not lose the agent still reconnecting when another of the region is heard first", () => {
      // a is back (heard at NOW + 900); b (silent since before the cut) is not yet.
      const back = decideLosses(
        [view("a", "us", NOW + 900, false), view("b", "us", NOW - 20_100, true)],
        NOW + 1_000,
        GRACE,
        2,
        cutPass.cuts,
      );
      expect(back.lose).toEqual([]);
      expect(back.cuts.get("us")).toEqual({ lastSignMs: NOW - 20_000, returnedAtMs: NOW + 1_000 });
      // Without the remembered cut, a's heartbeat after b's deadline would lose b at once.
      expect(
        decideLosses([view("a", "us", NOW + 900, false), view("b", "us", NOW - 20_100, true)], NOW + 1_000, GRACE).lose,
      ).toEqual(["b"]);

      // Still within a fresh timeout from the return: held.
      const later = decideLosses(
        [view("a", "us", NOW + 6_500, false), view("b", "us", NOW - 20_100, true)],
        NOW + 6_600,
        GRACE,
        2,
        back.cuts,
      );
      expect(later.lose).toEqual([]);

      // b comes back: nothing to hold, the cut is forgotten.
      const settled = decideLosses(
        [view("a", "us", NOW + 7_000, false), view("b", "us", NOW + 6_900, false)],
        NOW + 7_100,
        GRACE,
        2,
        later.cuts,
      );
      expect(settled).toEqual({ lose: [], held: [], cuts: new Map() });
    });

    it("loses an agent that stays silent past a fresh timeout after its region came back", () => {
      const back = decideLosses(
        [view("a", "us", NOW + 900, false), view("b", "us", NOW - 20_100, true)],
        NOW + 1_000,
        GRACE,
        2,
        cutPass.cuts,
      );
      // The return was noticed at NOW + 1 000: b's deadline is NOW + 7 000, and a is heard after it.
      const gone = decideLosses(
        [view("a", "us", NOW + 7_500, false), view("b", "us", NOW - 20_100, true)],
        NOW + 7_600,
        GRACE,
        2,
        back.cuts,
      );
      expect(gone.lose).toEqual(["b"]);
      expect(gone.cuts.size).toBe(0);
    });

    it("never delays a single dead machine: its region was not wholly silent, so no cut is remembered", () => {
      // a died; b keeps heartbeating. First pass: a just expired, b not heard since a's deadline (held, no cut).
      const first = decideLosses([view("a", "eu", NOW - 6_100, true), view("b", "eu", NOW - 1_500, false)], NOW, GRACE);
      expect(first.held).toHaveLength(1);
      expect(first.cuts.size).toBe(0);
      // b's next heartbeat comes after a's deadline: a is lost at once.
      const next = decideLosses(
        [view("a", "eu", NOW - 6_100, true), view("b", "eu", NOW + 400, false)],
        NOW + 500,
        GRACE,
        2,
        first.cuts,
      );
      expect(next.lose).toEqual(["a"]);
    });
  });
});
