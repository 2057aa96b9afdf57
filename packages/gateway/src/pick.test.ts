import { describe, expect, it } from "vitest";
import { pickTarget, type Target, type TargetState } from "./pick.js";

const t = (taskId: string, region: string): Target => ({
  taskId,
  region,
  host: "127.0.0.1",
  port: 1,
  revision: 1,
  trafficPercent: 100,
});
const RTT: Record<string, number> = { "eu-west|us-east": 75, "eu-west|ap-south": 120 };
const rtt = (a: string, b: string) => (a === b ? 0 : (RTT[`${a}|${b}`] ?? 200));

function pick(targets: Target[], states: Record<string, Partial<TargetState>>, region = "eu-west", exclude?: string[]) {
  const state = (id: string): TargetState => ({
    inFlight: 0,
    ewmaMs: 0,
    lastPickedSeq: 0,
    penaltyUntilMs: 0,
    ...states[id],
  });
  return pickTarget({ targets, state, region, rttMs: rtt, nowMs: 1_000, exclude: new Set(exclude) })?.taskId;
}

describe("pickTarget", () => {
  it.each([
    ["the gateway's own region first", [t("us", "us-east"), t("eu", "eu-west")], {}, "eu"],
    ["else the nearest region by RTT", [t("ap", "ap-south"), t("us", "us-east")], {}, "us"],
    [
      "the fewest in flight among the nearest",
      [t("a", "eu-west"), t("b", "eu-west")],
      { a: { inFlight: 3 }, b: { inFlight: 1 } },
      "b",
    ],
    [
      "the lower latency when clearly lower",
      [t("a", "eu-west"), t("b", "eu-west")],
      { a: { ewmaMs: 100 }, b: { ewmaMs: 40 } },
      "b",
    ],
    [
      "round robin when latencies are within 20 %",
      [t("a", "eu-west"), t("b", "eu-west")],
      { a: { ewmaMs: 50, lastPickedSeq: 9 }, b: { ewmaMs: 45, lastPickedSeq: 4 } },
      "b",
    ],
    [
      "skips a penalised replica while a healthy one exists",
      [t("a", "eu-west"), t("b", "us-east")],
      { a: { penaltyUntilMs: 5_000 } },
      "b",
    ],
    ["a penalised replica when nothing else is left", [t("a", "eu-west")], { a: { penaltyUntilMs: 5_000 } }, "a"],
  ] as [string, Target[], Record<string, Partial<TargetState>>, string][])("%s", (_name, targets, states, want) => {
    expect(pick(targets, states)).toBe(want);
  });

  it("never picks a replica already tried for the request; none left = undefined", () => {
    expect(pick([t("a", "eu-west"), t("b", "eu-west")], {}, "eu-west", ["a"])).toBe("b");
    expect(pick([t("a", "eu-west")], {}, "eu-west", ["a"])).toBeUndefined();
    expect(pick([], {})).toBeUndefined();
  });
});

describe("pickTarget during a rollout", () => {
  const old = { ...t("old", "eu-west"), revision: 1, trafficPercent: 90 };
  const canary = { ...t("new", "eu-west"), revision: 2, trafficPercent: 10 };
  const state = (): TargetState => ({ inFlight: 0, ewmaMs: 0, lastPickedSeq: 0, penaltyUntilMs: 0 });
  const at = (draw: number) =>
    pickTarget({ targets: [old, canary], state, region: "eu-west", rttMs: rtt, nowMs: 0, random: () => draw })?.taskId;

  it("splits the nearest replicas' traffic by their revisions' percent", () => {
    expect(at(0)).toBe("old");
    expect(at(0.89)).toBe("old");
    expect(at(0.9)).toBe("new");
    expect(at(0.99)).toBe("new");
  });

  it("sends about the canary's share to it over many draws", () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    let toCanary = 0;
    for (let i = 0; i < 10_000; i++)
      if (
        pickTarget({ targets: [old, canary], state, region: "eu-west", rttMs: rtt, nowMs: 0, random })?.taskId === "new"
      )
        toCanary++;
    expect(toCanary / 10_000).toBeGreaterThan(0.08);
    expect(toCanary / 10_000).toBeLessThan(0.12);
  });
});
