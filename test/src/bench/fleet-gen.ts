/**
 * A fleet of fake agents speaking the real agent protocol through @capa/bus: each has its own id, boot id,
 * 8 simulated H100s and prices, publishes its advert on `capa.v1.agent.<region>.<id>.advert` at the advert
 * period and heartbeats on `.heartbeat` at the heartbeat period (the agent's defaults: 10 s and 2 s), protobuf
 * encoded by the same codecs the agent uses. Sends are spread evenly over each period (one timer, 50 ms slots),
 * as a real fleet's are; the first advert of each agent goes out in its first heartbeat slot. Fake agents run
 * nothing: jobs placed on them stay PLACED. Used by `npm run bench:fleet` (in its own process).
 */
import { encode, type NatsConnection, subjects } from "@capa/bus";
import type { Advert, Gpu, Heartbeat } from "@capa/domain";

export interface FakeFleetOptions {
  count: number;
  prefix: string;
  regions: string[];
  gpusPerAgent: number;
  heartbeatMs: number;
  advertMs: number;
}

const SLOT_MS = 50;

interface FakeAgent {
  advert: Advert;
  heartbeat: Heartbeat;
}

function gpus(agentId: string, n: number): Gpu[] {
  return Array.from({ length: n }, (_, index) => ({
    index,
    uuid: `GPU-${agentId}-${index}`,
    model: "H100-80GB",
    vramMib: 81_559,
    health: "ok" as const,
    migEnabled: false,
    utilizationPct: 0,
    memoryUsedMib: 0,
    temperatureC: 35,
    driverVersion: "550.54.15",
  }));
}

export class FakeFleet {
  private readonly agents: FakeAgent[] = [];
  private timer: NodeJS.Timeout | undefined;
  private tick = 0;
  private readonly adverted = new Set<number>();
  sent = { adverts: 0, heartbeats: 0 };

  constructor(
    private readonly nc: NatsConnection,
    private readonly o: FakeFleetOptions,
  ) {
    for (let i = 0; i < o.count; i++) {
      const agentId = `${o.prefix}${String(i).padStart(5, "0")}`;
      const region = o.regions[i % o.regions.length]!;
      const bootId = `boot-${agentId}-${Date.now()}`;
      const g = gpus(agentId, o.gpusPerAgent);
      this.agents.push({
        advert: {
          agentId,
          region,
          zone: `${region}-a`,
          hostname: agentId,
          gpus: g,
          cpuCores: 64,
          memoryMib: 512 * 1024,
          labels: { "capa.io/simulated": "true" },
          fabricDomain: "",
          prices: [{ gpuModel: "H100-80GB", onDemandPerHour: 2_000_000 + (i % 100) * 1000, interruptiblePerHour: 0 }],
          simulated: true,
          sequence: 0,
          sentAtMs: 0,
          ttlSeconds: 30,
          version: "0.1.0",
          bootId,
          provider: `provider-${i % 20}`,
          residency: region.split("-")[0]!,
          reliability: 1,
        },
        heartbeat: {
          agentId,
          region,
          bootId,
          sequence: 0,
          sentAtMs: 0,
          gpus: g,
          runningTaskIds: [],
          freeGpus: g.length,
        },
      });
    }
  }

  start(): void {
    this.timer = setInterval(() => this.onTick(), SLOT_MS);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private onTick(): void {
    const hbSlots = Math.max(1, Math.round(this.o.heartbeatMs / SLOT_MS));
    const adSlots = Math.max(1, Math.round(this.o.advertMs / SLOT_MS));
    const now = Date.now();
    for (let i = this.tick % hbSlots; i < this.agents.length; i += hbSlots) {
      const a = this.agents[i]!;
      if (!this.adverted.has(i)) {
        this.adverted.add(i);
        this.advert(a, now);
      }
      a.heartbeat.sequence++;
      a.heartbeat.sentAtMs = now;
      this.nc.publish(subjects.heartbeat(a.advert.region, a.advert.agentId), encode.heartbeat(a.heartbeat));
      this.sent.heartbeats++;
    }
    for (let i = this.tick % adSlots; i < this.agents.length; i += adSlots)
      if (this.adverted.has(i)) this.advert(this.agents[i]!, now);
    this.tick++;
  }

  private advert(a: FakeAgent, now: number): void {
    a.advert.sequence++;
    a.advert.sentAtMs = now;
    this.nc.publish(subjects.advert(a.advert.region, a.advert.agentId), encode.advert(a.advert));
    this.sent.adverts++;
  }
}
