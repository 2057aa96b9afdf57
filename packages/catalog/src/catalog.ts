import { type GpuPrice, type Micros, parseUsd } from "@capa/domain";
import { parseCsvRecords } from "./csv.js";
import { canonicalCatalogModel } from "./models.js";
import { capaRegion } from "./regions.js";

/** One priced GPU offering from a public catalog, per GPU. */
export interface CatalogEntry {
  provider: string;
  cloudRegion: string;
  region: string;
  zone: string;
  instanceType: string;
  gpuModel: string;
  gpusPerInstance: number;
  onDemandPerGpuHour: Micros;
  /** 0 when the source has no spot price. */
  interruptiblePerGpuHour: Micros;
}

export interface CatalogLoadReport {
  entries: CatalogEntry[];
  /** Rows skipped, by reason: an honest feed has holes, and we count them instead of guessing. */
  skipped: Record<string, number>;
}

export const CATALOG_FILES = {
  lambda: "lambda.csv",
  runpod: "runpod.csv",
  aws: "aws_gpu.csv",
  gcp: "gcp_gpu.csv",
} as const;

/**
 * Parses one provider's CSV (columns by header name). GCP rows carry the accelerator's own price per GPU
 * (the host machine is billed on a separate row, which we do not add: capa sells GPU-hours).
 * Spot prices above on-demand (RunPod L40S) are kept out: an interruptible price must be cheaper.
 */
export function parseCatalog(
  provider: string,
  text: string,
  metadataGb?: ReadonlyMap<string, number>,
): CatalogLoadReport {
  const entries: CatalogEntry[] = [];
  const skipped: Record<string, number> = {};
  const seen = new Set<string>();
  const skip = (reason: string) => {
    skipped[reason] = (skipped[reason] ?? 0) + 1;
  };
  for (const row of parseCsvRecords(text)) {
    const accelerator = row.AcceleratorName ?? "";
    if (!accelerator) {
      skip("no-accelerator");
      continue;
    }
    const gpuModel = canonicalCatalogModel(accelerator, metadataGb);
    if (!gpuModel) {
      skip("unknown-model");
      continue;
    }
    const count = Number(row.AcceleratorCount);
    if (!Number.isFinite(count) || count < 1 || !Number.isInteger(count)) {
      skip("bad-count");
      continue;
    }
    const region = capaRegion(row.Region ?? "");
    if (!region) {
      skip("unknown-region");
      continue;
    }
    const price = money(row.Price);
    if (price === undefined || price <= 0) {
      skip("no-on-demand-price");
      continue;
    }
    // AWS p4de.24xlarge is listed twice per zone (as A100 and as A100-80GB): keep the first row.
    const instanceKey = `${row.AvailabilityZone || row.Region}|${row.InstanceType}`;
    if (row.InstanceType && seen.has(instanceKey)) {
      skip("duplicate-instance-row");
      continue;
    }
    seen.add(instanceKey);
    const spot = money(row.SpotPrice);
    const perGpu = Math.round(price / count);
    const spotPerGpu = spot !== undefined && spot > 0 ? Math.round(spot / count) : 0;
    entries.push({
      provider,
      cloudRegion: row.Region ?? "",
      region,
      zone: row.AvailabilityZone || row.Region || "",
      instanceType: row.InstanceType || `${count}x${accelerator}`,
      gpuModel,
      gpusPerInstance: count,
      onDemandPerGpuHour: perGpu,
      interruptiblePerGpuHour: spotPerGpu > 0 && spotPerGpu < perGpu ? spotPerGpu : 0,
    });
  }
  return { entries, skipped };
}

function money(text: string | undefined): Micros | undefined {
  if (!text) return undefined;
  const value = Number(text);
  if (!Number.isFinite(value)) return undefined;
  // Catalog prices have up to 6 decimals; route through the exact decimal parser, never float arithmetic.
  const fixed = value.toFixed(6);
  return parseUsd(fixed);
}

export function parseGpuMetadata(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const row of parseCsvRecords(text)) {
    const gb = Number(row.MemoryGB);
    // capa drives NVIDIA GPUs (nvidia-smi, CUDA_VISIBLE_DEVICES): other vendors' rows are not offers here.
    if (row.GPU && Number.isFinite(gb) && gb > 0 && (row.Manufacturer ?? "nvidia") === "nvidia") out.set(row.GPU, gb);
  }
  return out;
}

/** Cheapest on-demand and interruptible price per GPU-hour for each (region, model). */
export function priceBook(entries: readonly CatalogEntry[]): Map<string, Map<string, GpuPrice>> {
  const book = new Map<string, Map<string, GpuPrice>>();
  for (const e of entries) {
    const models = book.get(e.region) ?? new Map<string, GpuPrice>();
    book.set(e.region, models);
    const current = models.get(e.gpuModel);
    const onDemand = Math.min(current?.onDemandPerHour ?? Number.MAX_SAFE_INTEGER, e.onDemandPerGpuHour);
    const cheapestSpot = [current?.interruptiblePerHour ?? 0, e.interruptiblePerGpuHour].filter((p) => p > 0);
    const spot = cheapestSpot.length > 0 ? Math.min(...cheapestSpot) : 0;
    models.set(e.gpuModel, {
      gpuModel: e.gpuModel,
      onDemandPerHour: onDemand,
      interruptiblePerHour: spot > 0 && spot < onDemand ? spot : 0,
    });
  }
  return book;
}
