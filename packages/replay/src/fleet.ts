/**
 * Fleets for a replay: a CSV of agents (`agent_id,region,gpu_model,gpus,price_per_gpu_hour[,spot_price]`,
 * optional `zone`, `provider`, `fabric_domain`, `vram_gb`), or one generated from real catalog instances and a
 * real fleet's GPUs-per-machine mix (`generateFleet`). Both give the engine's AgentView. Pure.
 */
import { type CatalogEntry, parseCsvRecords } from "@capa/catalog";
import { KNOWN_GPUS, type Micros, residencyOfRegion } from "@capa/domain";
import type { AgentView } from "@capa/placement";
import { readCsv } from "./csv.js";
import { FleetError } from "./errors.js";
import { Cells, knownModel } from "./trace.js";

export const FLEET_COLUMNS = ["agent_id", "region", "gpu_model", "gpus", "price_per_gpu_hour"] as const;

function vramOf(model: string): number {
  const gb = Number(/-(\d+)GB$/.exec(model)?.[1] ?? KNOWN_GPUS[model] ?? 0);
  return gb * 1024;
}

/** Parses a fleet CSV into agents seen at `nowMs`; `file` names it in errors. */
export function parseFleet(text: string, nowMs: number, file = "fleet"): AgentView[] {
  const fail = (line: number, column: number, name: string, detail: string, cause?: unknown) =>
    new FleetError(file, line, column, name, detail, { cause });
  const table = readCsv(text, FLEET_COLUMNS, fail);
  const seen = new Set<string>();
  return table.rows.map((row) => {
    const c = new Cells(file, table, row, FleetError);
    const id = c.text("agent_id");
    if (id === "") c.fail("agent_id", "must not be empty");
    if (seen.has(id)) c.fail("agent_id", `duplicate agent id ${JSON.stringify(id)}`);
    seen.add(id);
    const region = c.text("region");
    if (region === "") c.fail("region", "must not be empty");
    const model =
      knownModel(c.text("gpu_model")) ??
      c.fail("gpu_model", `unknown GPU model ${JSON.stringify(c.text("gpu_model"))}`);
    const gpus = c.number("gpus", { integer: true, min: 1, max: 64 });
    const onDemand = c.usd("price_per_gpu_hour");
    if (onDemand <= 0) c.fail("price_per_gpu_hour", "must be a positive dollar amount");
    const spot = c.usd("spot_price");
    const vram = c.has("vram_gb") ? c.number("vram_gb", { integer: true, min: 1, max: 1024 }) * 1024 : vramOf(model);
    return agentView({
      id,
      region,
      zone: c.text("zone") || `${region}-a`,
      provider: c.text("provider") || "fleet",
      fabricDomain: c.text("fabric_domain"),
      model,
      gpus,
      vramMib: vram,
      onDemand,
      spot: spot > 0 && spot < onDemand ? spot : 0,
      nowMs,
      reliability: 1,
      labels: {},
    });
  });
}

interface AgentSpec {
  id: string;
  region: string;
  zone: string;
  provider: string;
  fabricDomain: string;
  model: string;
  gpus: number;
  vramMib: number;
  onDemand: Micros;
  spot: Micros;
  nowMs: number;
  reliability: number;
  labels: Record<string, string>;
}

function agentView(s: AgentSpec): AgentView {
  return {
    id: s.id,
    region: s.region,
    zone: s.zone,
    provider: s.provider,
    fabricDomain: s.fabricDomain,
    residency: residencyOfRegion(s.region),
    labels: s.labels,
    reliability: s.reliability,
    gpus: Array.from({ length: s.gpus }, (_, index) => ({ index, model: s.model, vramMib: s.vramMib, healthy: true })),
    prices: [{ gpuModel: s.model, onDemandPerHour: s.onDemand, interruptiblePerHour: s.spot }],
    lastSeenMs: s.nowMs,
    draining: false,
    simulated: true,
  };
}

/** One priced instance type in one zone: the unit a generated agent is made from. */
export interface InstanceOffer {
  provider: string;
  region: string;
  zone: string;
  instanceType: string;
  gpuModel: string;
  gpuCount: number;
  vramMib: number;
  onDemandPerGpuHour: Micros;
  /** 0 = no interruptible price (none published, or not below on-demand). */
  interruptiblePerGpuHour: Micros;
}

/** Catalog rows as instance offers; zones are prefixed by provider so two clouds' "us-east-1a" never merge. */
export function offersFromCatalog(entries: readonly CatalogEntry[]): InstanceOffer[] {
  return entries.map((e) => ({
    provider: e.provider,
    region: e.region,
    zone: `${e.provider}:${e.zone}`,
    instanceType: e.instanceType,
    gpuModel: e.gpuModel,
    gpuCount: e.gpusPerInstance,
    vramMib: vramOf(e.gpuModel),
    onDemandPerGpuHour: e.onDemandPerGpuHour,
    interruptiblePerGpuHour: e.interruptiblePerGpuHour,
  }));
}

/** A real fleet's machines by GPU count (Alibaba 2026 spot inventory: mostly 1-GPU and 8-GPU machines). */
export const BUILTIN_GPU_COUNT_MIX: ReadonlyMap<number, number> = new Map([
  [1, 3396],
  [4, 10],
  [8, 872],
]);

/** GPUs per machine → machines, from an inventory CSV with a `gpu_capacity_num` column; the built-in mix if none. */
export function gpuCountMix(inventoryCsv: string | undefined): Map<number, number> {
  const mix = new Map<number, number>();
  for (const row of inventoryCsv ? parseCsvRecords(inventoryCsv) : []) {
    const n = Number(row.gpu_capacity_num);
    if (Number.isInteger(n) && n > 0) mix.set(n, (mix.get(n) ?? 0) + 1);
  }
  return mix.size > 0 ? mix : new Map(BUILTIN_GPU_COUNT_MIX);
}

const BLOCK = 16;

/**
 * A simulated fleet from real catalog instances. The GPUs-per-machine mix follows `mix`; each machine is one
 * catalog instance type in one zone at that zone's list price, provider chosen uniformly among those selling
 * that size. 8-GPU machines come in blocks of 16 sharing one fabric domain (an NVLink/InfiniBand pod), as
 * providers sell them. Ids are shuffled, so "first fit" by id is blind to price, provider and region.
 */
export function generateFleet(
  size: number,
  offers: readonly InstanceOffer[],
  mix: ReadonlyMap<number, number>,
  rng: () => number,
  nowMs: number,
): AgentView[] {
  const bySize = new Map<number, Map<string, InstanceOffer[]>>();
  for (const o of offers) {
    const providers = bySize.get(o.gpuCount) ?? new Map<string, InstanceOffer[]>();
    bySize.set(o.gpuCount, providers);
    providers.set(o.provider, [...(providers.get(o.provider) ?? []), o]);
  }
  // The mix counts machines; an 8-GPU draw adds a whole block, so its weight is divided by the block size.
  const sizes = [...mix.entries()].filter(([n]) => bySize.has(n)).map(([n, w]) => [n, n >= 8 ? w / BLOCK : w] as const);
  if (sizes.length === 0) return [];
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
    for (let k = 0; k < count; k++) {
      agents.push(
        agentView({
          id: ids[agents.length]!,
          region: offer.region,
          zone: offer.zone,
          provider: offer.provider,
          fabricDomain: fabric,
          model: offer.gpuModel,
          gpus: offer.gpuCount,
          vramMib: offer.vramMib,
          onDemand: offer.onDemandPerGpuHour,
          spot: offer.interruptiblePerGpuHour,
          labels: { instance: offer.instanceType },
          reliability: 0.95 + 0.05 * rng(),
          nowMs: nowMs - Math.floor(rng() * 10_000),
        }),
      );
    }
  }
  return agents;
}

function shuffledIds(n: number, rng: () => number): string[] {
  const ids = Array.from({ length: n }, (_, i) => `agent-${String(i).padStart(6, "0")}`);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [ids[i], ids[j]] = [ids[j]!, ids[i]!];
  }
  return ids;
}
