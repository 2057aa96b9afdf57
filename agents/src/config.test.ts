import { describe, expect, it } from "vitest";
import {
  AGENT_DEFAULTS,
  defaultAgentId,
  parseAgentConfig,
  parseDurationMs,
  parseLabelFlag,
  parsePriceFlag,
  resolveAgentConfig,
} from "./config.js";
import { AgentConfigError } from "./errors.js";

describe("parsePriceFlag", () => {
  it.each([
    ["H100-80GB=2.49/1.20", { gpuModel: "H100-80GB", onDemandPerHour: 2_490_000, interruptiblePerHour: 1_200_000 }],
    ["H100-80GB=2.49", { gpuModel: "H100-80GB", onDemandPerHour: 2_490_000, interruptiblePerHour: 0 }],
    ["h100=$3", { gpuModel: "H100-80GB", onDemandPerHour: 3_000_000, interruptiblePerHour: 0 }],
    [" A100-40GB = 1.1 / 0.000001 ", { gpuModel: "A100-40GB", onDemandPerHour: 1_100_000, interruptiblePerHour: 1 }],
  ])("%s", (text, expected) => {
    expect(parsePriceFlag(text)).toEqual(expected);
  });

  it.each([
    ["H100-80GB", /expected MODEL=USD/],
    ["H100-80GB=abc", /bad on-demand price "abc"/],
    ["H100-80GB=1/-1", /bad interruptible price "-1"/],
    ["H100-80GB=1.0000001", /bad on-demand price/],
    ["WARP9=1", /unknown GPU model "WARP9"/],
    ["H100-80GB=1/2/3", /expected MODEL=USD/],
  ])("rejects %s", (text, message) => {
    expect(() => parsePriceFlag(text)).toThrow(AgentConfigError);
    expect(() => parsePriceFlag(text)).toThrow(message);
  });
});

describe("flag helpers", () => {
  it("parses labels", () => {
    expect(parseLabelFlag("tier=gold")).toEqual(["tier", "gold"]);
    expect(parseLabelFlag("capa.io/rack=r 12")).toEqual(["capa.io/rack", "r 12"]);
    expect(() => parseLabelFlag("novalue")).toThrow(/KEY=VALUE/);
    expect(() => parseLabelFlag("bad key=1")).toThrow(/invalid key/);
  });

  it("parses durations", () => {
    expect(parseDurationMs("500ms", "--x")).toBe(500);
    expect(parseDurationMs("10s", "--x")).toBe(10_000);
    expect(parseDurationMs("2", "--x")).toBe(2_000);
    expect(parseDurationMs("1.5m", "--x")).toBe(90_000);
    expect(() => parseDurationMs("0s", "--advert-interval")).toThrow(/--advert-interval must be positive/);
    expect(() => parseDurationMs("soon", "--advert-interval")).toThrow(/--advert-interval "soon"/);
  });

  it("derives a subject-safe agent id from the hostname", () => {
    expect(defaultAgentId("GPU-Box 7.example.com")).toBe("gpu-box-7-example-com");
    expect(defaultAgentId("...")).toBe("agent");
    expect(defaultAgentId("x".repeat(100))).toHaveLength(64);
  });
});

describe("parseAgentConfig", () => {
  it("builds a config from flags and CAPA_NATS_URL", () => {
    const config = parseAgentConfig(
      {
        id: "box-1",
        region: "eu-west",
        label: ["tier=gold", "rack=r1"],
        price: ["H100-80GB=2.49/1.20"],
        simulateGpus: "4xH100-80GB",
        advertInterval: "5s",
        heartbeatInterval: "500ms",
        partitionGrace: "90s",
        fabricDomain: "nvl-1",
      },
      { CAPA_NATS_URL: "nats://n1:4222,nats://n2:4222" },
    );
    expect(config).toMatchObject({
      nats: "nats://n1:4222,nats://n2:4222",
      agentId: "box-1",
      region: "eu-west",
      labels: { tier: "gold", rack: "r1" },
      prices: [{ gpuModel: "H100-80GB", onDemandPerHour: 2_490_000, interruptiblePerHour: 1_200_000 }],
      simulateGpus: "4xH100-80GB",
      advertIntervalMs: 5_000,
      heartbeatIntervalMs: 500,
      partitionGraceMs: 90_000,
      fabricDomain: "nvl-1",
    });
  });

  it("prefers --nats over the environment", () => {
    expect(parseAgentConfig({ nats: "nats://a:1" }, { CAPA_NATS_URL: "nats://b:2" }).nats).toBe("nats://a:1");
  });

  it.each([
    [{ id: "a.b" }, /agent id must match/],
    [{ region: "eu west" }, /region must match/],
    [{ simulateGpus: "lots" }, /--simulate-gpus: invalid GPU spec/],
    [{ price: ["H100=1", "H100-80GB=2"] }, /H100-80GB is priced twice/],
    [{ partitionGrace: "soon" }, /--partition-grace "soon": expected a duration/],
    [{ heartbeatInterval: "40s", advertTtl: "30s" }, /advert TTL \(30 s\) must be longer than the heartbeat interval/],
  ])("rejects %o", (flags, message) => {
    expect(() => parseAgentConfig(flags, {})).toThrow(message);
  });
});

describe("resolveAgentConfig", () => {
  it("applies the documented defaults", () => {
    const cfg = resolveAgentConfig({ nats: "nats://x", region: "us-east" }, "Host.One");
    expect(cfg).toMatchObject({
      agentId: "host-one",
      zone: "us-east-a",
      advertIntervalMs: 10_000,
      heartbeatIntervalMs: 2_000,
      advertTtlSeconds: 6,
      usageIntervalMs: 30_000,
      republishIntervalMs: 10_000,
      prices: [],
      simulateGpus: undefined,
    });
    expect(cfg.inheritEnv).toEqual([...AGENT_DEFAULTS.inheritEnv]);
    // The TTL follows the heartbeat: three missed heartbeats, rounded up to whole seconds, at least 3 s.
    expect(resolveAgentConfig({ nats: "x", region: "r", heartbeatIntervalMs: 200 }).advertTtlSeconds).toBe(3);
    expect(resolveAgentConfig({ nats: "x", region: "r", heartbeatIntervalMs: 1_500 }).advertTtlSeconds).toBe(5);
    expect(resolveAgentConfig({ nats: "x", region: "r", heartbeatIntervalMs: 10_000 }).advertTtlSeconds).toBe(30);
    expect(cfg.workDir).toMatch(/capa-agent-host-one$/);
  });
});
