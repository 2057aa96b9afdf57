/**
 * Relaxations: for a job that cannot be placed, the single constraint change that would place it most
 * cheaply, in words ("allow A100-80GB: $1.89/GPU-h in eu-west"). One entry per relaxable constraint; residency
 * is deliberately absent (a legal constraint is never traded), and so are health and draining.
 */
import { formatUsd, type JobSpec } from "@capa/domain";
import type { Placement } from "./model.js";

export interface Relaxation {
  name: string;
  applies(spec: JobSpec): boolean;
  relax(spec: JobSpec): JobSpec;
  /** The advice, given the plan the relaxed spec gets (its first placement, its highest price). */
  describe(spec: JobSpec, placements: readonly Placement[]): string;
}

const where = (p: Placement) => `${p.gpuModel} at ${formatUsd(p.pricePerGpuHour)}/GPU-h in ${p.region}`;
const dearest = (ps: readonly Placement[]) =>
  ps.reduce((a, b) => (b.pricePerGpuHour > a.pricePerGpuHour ? b : a), ps[0]!);

export const RELAXATIONS: readonly Relaxation[] = [
  {
    name: "gpu-models",
    applies: (s) => s.gpuModels.length > 0,
    relax: (s) => ({ ...s, gpuModels: [] }),
    describe: (_s, ps) => `allow ${ps[0]!.gpuModel}: ${formatUsd(ps[0]!.pricePerGpuHour)}/GPU-h in ${ps[0]!.region}`,
  },
  {
    name: "max-price",
    applies: (s) => s.maxPricePerGpuHour > 0,
    relax: (s) => ({ ...s, maxPricePerGpuHour: 0 }),
    describe: (_s, ps) => `raise max price to ${formatUsd(dearest(ps).pricePerGpuHour)}/GPU-h (${where(dearest(ps))})`,
  },
  {
    name: "regions",
    applies: (s) => s.regions.length > 0 || s.excludeRegions.length > 0,
    relax: (s) => ({ ...s, regions: [], excludeRegions: [] }),
    describe: (_s, ps) => `allow region ${ps[0]!.region}: ${where(ps[0]!)}`,
  },
  {
    name: "min-vram",
    applies: (s) => s.minVramMib > 0,
    relax: (s) => ({ ...s, minVramMib: 0 }),
    describe: (_s, ps) => `accept less GPU memory: ${where(ps[0]!)}`,
  },
  {
    name: "node-selector",
    applies: (s) => Object.keys(s.nodeSelector).length > 0,
    relax: (s) => ({ ...s, nodeSelector: {} }),
    describe: (s, ps) =>
      `drop node selector ${Object.entries(s.nodeSelector)
        .map(([k, v]) => `${k}=${v}`)
        .join(",")}: ${where(ps[0]!)}`,
  },
  {
    name: "fabric-spanning",
    applies: (s) => s.kind === "training" && s.replicas > 1 && !s.allowFabricSpanning,
    relax: (s) => ({ ...s, allowFabricSpanning: true }),
    describe: (_s, ps) => `allow fabric spanning: ${ps.length} replicas of ${where(ps[0]!)}`,
  },
  {
    name: "interruptible",
    applies: (s) => !s.interruptible,
    relax: (s) => ({ ...s, interruptible: true }),
    describe: (_s, ps) => `accept interruptible capacity: ${where(ps[0]!)}`,
  },
];
