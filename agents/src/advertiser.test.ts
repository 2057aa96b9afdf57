import { decode, subjects } from "@capa/bus";
import type { Gpu } from "@capa/domain";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { type AdvertBody, Advertiser } from "./advertiser.js";

const gpu = (index: number, extra: Partial<Gpu> = {}): Gpu => ({
  index,
  uuid: `GPU-${index}`,
  model: "H100-80GB",
  vramMib: 81920,
  health: "ok",
  migEnabled: false,
  utilizationPct: 0,
  memoryUsedMib: 0,
  temperatureC: 30,
  driverVersion: "535",
  ...extra,
});

function setup() {
  const sent: { subject: string; data: Uint8Array }[] = [];
  let body: AdvertBody = {
    agentId: "a1",
    region: "eu-west",
    zone: "eu-west-a",
    hostname: "h",
    gpus: [gpu(0), gpu(1)],
    cpuCores: 8,
    memoryMib: 1024,
    labels: { tier: "gold" },
    fabricDomain: "",
    prices: [],
    simulated: true,
    ttlSeconds: 30,
    version: "0.1.0",
    bootId: "b1",
    provider: "",
    residency: "eu",
    reliability: 1,
  };
  const advertiser = new Advertiser(
    {
      publisher: { publish: (subject, data) => sent.push({ subject, data }) },
      region: "eu-west",
      agentId: "a1",
      advertIntervalMs: 60_000,
      logger: pino({ level: "silent" }),
      now: () => 1000,
    },
    () => body,
  );
  const set = (next: Partial<AdvertBody>) => {
    body = { ...body, ...next };
  };
  return { sent, advertiser, set };
}

describe("Advertiser", () => {
  it("publishes protobuf adverts on the agent's subject with increasing sequence", () => {
    const { sent, advertiser } = setup();
    advertiser.start();
    advertiser.publishAdvert();
    advertiser.stop();
    expect(sent.map((s) => s.subject)).toEqual([subjects.advert("eu-west", "a1"), subjects.advert("eu-west", "a1")]);
    expect(sent.map((s) => decode.advert(s.data).sequence)).toEqual([1, 2]);
    expect(decode.advert(sent[0]!.data)).toMatchObject({ agentId: "a1", simulated: true, sentAtMs: 1000 });
    expect(advertiser.current().sequence).toBe(2);
  });

  it("re-advertises on an offer change but not on telemetry", () => {
    const { sent, advertiser, set } = setup();
    advertiser.start();
    advertiser.stop();
    set({ gpus: [gpu(0, { utilizationPct: 99, temperatureC: 80, memoryUsedMib: 5 }), gpu(1)] });
    expect(advertiser.publishIfChanged()).toBe(false);
    set({ gpus: [gpu(0), gpu(1, { health: "failed" })] });
    expect(advertiser.publishIfChanged()).toBe(true);
    set({ labels: { tier: "silver" } });
    expect(advertiser.publishIfChanged()).toBe(true);
    expect(advertiser.publishIfChanged()).toBe(false);
    expect(sent).toHaveLength(3);
  });

  it("sends heartbeats on their own subject and sequence", () => {
    const { sent, advertiser } = setup();
    const hb = { agentId: "a1", region: "eu-west", bootId: "b1", gpus: [], runningTaskIds: ["t1"], freeGpus: 1 };
    advertiser.heartbeat(hb);
    advertiser.heartbeat(hb);
    expect(sent.map((s) => s.subject)).toEqual([
      subjects.heartbeat("eu-west", "a1"),
      subjects.heartbeat("eu-west", "a1"),
    ]);
    expect(decode.heartbeat(sent[1]!.data)).toMatchObject({ sequence: 2, runningTaskIds: ["t1"], freeGpus: 1 });
  });
});
