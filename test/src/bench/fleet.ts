/**
 * Simulated fleets from real catalog instances. The GPUs-per-machine mix follows a real fleet (Alibaba 2026
 * spot inventory: mostly 1-GPU and 8-GPU machines); each machine is one catalog instance type in one zone at
 * that zone's list price, provider chosen uniformly among those selling that size. 8-GPU machines come in
 * blocks of 16 sharing one fabric domain (an NVLink/InfiniBand pod), as providers sell them.
 */
import { residencyOfRegion } from "@capa/domain";
import type { AgentView } from "@capa/placement";
import type { DataSet, InstanceOffer } from "./data.js";

export const NOW = 1_750_000_000_000;
const BLOCK = 16;

export function makeFleet(size: number, data: DataSet, rng: () => number): AgentView[] {
  const bySize = new Map<number, Map<string, InstanceOffer[]>>();
  for (const o of data.offers) {
    const providers = bySize.get(o.gpuCount) ?? new Map<string, InstanceOffer[]>();
    bySize.set(o.gpuCount, providers);
    providers.set(o.provider, [...(providers.get(o.provider) ?? []), o]);
  }
  // The mix counts machines; an 8-GPU draw adds a whole block, so its weight is divided by the block size.
  const sizes = [...data.gpuCountMix.entries()]
    .filter(([n]) => bySize.has(n))
    .map(([n, w]) => [n, n >= 8 ? w / BLOCK : w] as const);
  const mixTotal = sizes.reduce((s, [, w]) => s + w, 0);
  const drawSize = () => {
    let x = rng() * mixTotal;
    for (const [n, w] of sizes) {
      x -= w;
      if (x < 0) return n;
    }
    return sizes[sizes.length - 1]![0];
  };
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rng() * list.length)]!;
  // Ids in shuffled order, so that "first fit" by id is blind to price, provider and region.
  const ids = shuffledIds(size, rng);
  const agents: AgentView[] = [];
  let blocks = 0;
  while (agents.length < size) {
    const gpus = drawSize();
    const providers = bySize.get(gpus)!;
    const provider = pick([...providers.keys()].sort());
    const offer = pick(providers.get(provider)!);
    const count = gpus >= 8 ? Math.min(BLOCK, size - agents.length) : 1;
    const fabric = gpus >= 8 ? `${offer.zone}/pod${blocks++}` : "";
    for (let k = 0; k < count; k++) agents.push(agentFrom(ids[agents.length]!, offer, fabric, rng));
  }
  return agents;
}

function agentFrom(id: string, o: InstanceOffer, fabricDomain: string, rng: () => number): AgentView {
  return {
    id,
    region: o.region,
    zone: o.zone,
    provider: o.provider,
    fabricDomain,
    residency: residencyOfRegion(o.region),
    labels: { instance: o.instanceType },
    reliability: 0.95 + 0.05 * rng(),
    gpus: Array.from({ length: o.gpuCount }, (_, index) => ({
      index,
      model: o.gpuModel,
      vramMib: o.vramMib,
      healthy: true,
    })),
    prices: [
      { gpuModel: o.gpuModel, onDemandPerHour: o.onDemandPerGpuHour, interruptiblePerHour: o.interruptiblePerGpuHour },
    ],
    lastSeenMs: NOW - Math.floor(rng() * 10_000),
    draining: false,
    simulated: true,
  };
}

function shuffledIds(n: number, rng: () => number): string[] {
  const ids = Array.from({ length: n }, (_, i) => `agent-${String(i).padStart(6, "0")}`);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [ids[i], ids[j]] = [ids[j]!, ids[i]!];
  }
  return ids;
}
