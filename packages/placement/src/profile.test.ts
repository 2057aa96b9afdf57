import { describe, expect, it } from "vitest";
import { PlacementEngine } from "./engine.js";
import { ProfileError, UnknownProfileError } from "./errors.js";
import { BUILTIN_PROFILES, parseProfile } from "./profile.js";

describe("profiles", () => {
  it("has the four built-ins, all valid", () => {
    expect(BUILTIN_PROFILES.map((p) => p.name)).toEqual(["cheapest", "balanced", "low-latency", "resilient"]);
    for (const p of BUILTIN_PROFILES) expect(parseProfile(JSON.stringify(p))).toEqual(p);
  });

  it("parses YAML and JSON", () => {
    const yaml = "name: gpu-poor\nweights:\n  cost: 10\n  reliability: 1\nmaxCandidates: 8\n";
    expect(parseProfile(yaml)).toEqual({ name: "gpu-poor", weights: { cost: 10, reliability: 1 }, maxCandidates: 8 });
    expect(parseProfile('{"name":"x","weights":{"latency":1}}').weights).toEqual({ latency: 1 });
  });

  it.each([
    ["name: x\nweights: {cots: 1}\n", "weights.cots"],
    ["name: x\nweights: {cost: -1}\n", "weights.cost"],
    ["name: X Y\nweights: {cost: 1}\n", "name"],
    ["name: x\nweights: {cost: 0}\n", "weights"],
    ["name: x\nweights: {cost: 1}\nmaxCandidates: 0\n", "maxCandidates"],
    ["name: x\nweights: {cost: 1}\ncolour: blue\n", ""],
    ["weights: {cost: 1}\n", "name"],
    ["- 1\n- 2\n", ""],
    ["name: [unclosed\n", ""],
  ])("rejects %j naming field %j", (text, field) => {
    try {
      parseProfile(text);
      expect.unreachable("should have thrown");
    } catch (error) {
      expect(error).toBeInstanceOf(ProfileError);
      expect((error as ProfileError).field).toBe(field);
    }
  });

  it("the engine manages profiles: upsert, select, list", () => {
    const engine = new PlacementEngine({ profiles: [{ name: "mine", weights: { cost: 1 } }], activeProfile: "mine" });
    expect(engine.activeProfile().name).toBe("mine");
    engine.setActiveProfile("balanced");
    expect(engine.activeProfile().weights.cost).toBe(50);
    expect(() => engine.setActiveProfile("nope")).toThrow(UnknownProfileError);
    expect(() => engine.upsertProfile({ name: "bad", weights: { nope: 1 } })).toThrow(ProfileError);
    expect(engine.profiles().map((p) => p.name)).toEqual(["balanced", "cheapest", "low-latency", "mine", "resilient"]);
  });
});
