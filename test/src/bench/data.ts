/**
 * Loads the public data the benchmark is built from (../shared/data relative to the repository root, or
 * CAPA_DATA_DIR): GPU prices from the SkyPilot catalogs (AWS, GCP, Lambda, RunPod), the GPU count mix of a real
 * fleet (Alibaba 2026 spot inventory) and job mixes from the Alibaba PAI traces. Columns are read by header
 * name; oddities are validated and counted, never guessed. Without the directory a small built-in catalog is
 * used and the report says so.
 *
 * Catalog region → capa region (mirrors @capa/catalog's mapping): AWS/GCP/Lambda by geography (AWS us-east-1,
 * us-east-2, GCP us-east4, Lambda us-east-3 → us-east; us-west-* → us-west; GCP us-central1, Lambda us-midwest-1
 * → us-central; eu-west-* and europe-west1,2,4 → eu-west; europe-west3/6, eu-central-*, europe-central-* regions →
 * eu-central; *-north-* → eu-north; *-south-1 in Europe → eu-south; ap/asia-northeast → ap-northeast;
 * ap/asia-southeast and australia → ap-southeast; ap/asia-south → ap-south; asia-east → ap-east; ca-central and
 * northamerica → ca-central; southamerica/sa-east → sa-east; me-* → me-central); RunPod country codes: US →
 * us-central, CA → ca-central, NL → eu-west, CZ/RO → eu-central, IS/NO/SE → eu-north.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { KNOWN_GPUS, type Micros, parseUsd } from "@capa/domain";
import { parseCsv } from "./csv.js";

/** One priced instance type in one zone: the unit a simulated agent is made from. */
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

export interface PodRecord {
  gpus: number;
  durationSeconds: number;
  bestEffort: boolean;
}

export interface DataSet {
  source: string;
  offers: InstanceOffer[];
  /** Rows skipped, by provider and reason. */
  skipped: Record<string, number>;
  /** GPUs per machine → count, from a real fleet. */
  gpuCountMix: Map<number, number>;
  pods: PodRecord[];
  /** Instances per inference service (GPU roles only). */
  serviceSizes: number[];
}

export function dataDir(): string {
  if (process.env.CAPA_DATA_DIR) return process.env.CAPA_DATA_DIR;
  // test/{src,dist}/bench/data.* → repository root → ../shared/data
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
  return join(root, "..", "shared", "data");
}

const EXACT_REGIONS: Record<string, string> = {
  US: "us-central",
  CA: "ca-central",
  NL: "eu-west",
  CZ: "eu-central",
  RO: "eu-central",
  IS: "eu-north",
  NO: "eu-north",
  SE: "eu-north",
  "us-central1": "us-central",
  "us-midwest-1": "us-central",
  "europe-west3": "eu-central",
  "europe-west6": "eu-central",
  "europe-west8": "eu-south",
  "europe-central2": "eu-central",
  "europe-north1": "eu-north",
  "eu-north-1": "eu-north",
  "eu-south-1": "eu-south",
  "europe-central-1": "eu-central",
  "europe-south-1": "eu-south",
  "ca-central-1": "ca-central",
  "me-west-1": "me-central",
};
const REGION_PREFIXES: Array<[RegExp, string]> = [
  [/^us-east/, "us-east"],
  [/^us-west/, "us-west"],
  [/^us-south/, "us-south"],
  [/^us-central/, "us-central"],
  [/^(eu|europe)-west/, "eu-west"],
  [/^(eu|europe)-central/, "eu-central"],
  [/^(ap|asia)-northeast/, "ap-northeast"],
  [/^(ap|asia)-southeast/, "ap-southeast"],
  [/^(ap|asia)-south/, "ap-south"],
  [/^asia-east/, "ap-east"],
  [/^australia/, "ap-southeast"],
  [/^northamerica/, "ca-central"],
  [/^(southamerica|sa-)/, "sa-east"],
  [/^(me|il)-/, "me-central"],
];

export function capaRegion(cloudRegion: string): string | undefined {
  const exact = EXACT_REGIONS[cloudRegion];
  if (exact) return exact;
  for (const [pattern, region] of REGION_PREFIXES) if (pattern.test(cloudRegion)) return region;
  return undefined;
}

/** Catalog accelerator name → capa's "<FAMILY>-<GB>GB" (packaging variants fold into their family). */
export function canonicalModel(name: string, metadataGb: ReadonlyMap<string, number>): string | undefined {
  const upper = name.toUpperCase();
  const explicit = /^(.*?)-(\d+)GB/.exec(upper);
  const family = (explicit?.[1] ?? upper)
    .replace(/-(SXM\d?|NVL|NVLINK|MEGA|PCIE)$/, "")
    .replace(/^RTXA(\d)/, "A$1")
    .replace(/-ADA$/, "ADA")
    .replace(/-/g, "");
  if (family === "T4G") return "T4-16GB";
  // Catalog metadata lists H200 and B200 at 80 GB (wrong): capa's own table first.
  const gb = explicit ? Number(explicit[2]) : (KNOWN_GPUS[family] ?? metadataGb.get(name) ?? metadataGb.get(family));
  return gb ? `${family}-${gb}GB` : undefined;
}

function dollars(text: string | undefined): Micros | undefined {
  if (!text) return undefined;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) return undefined;
  return parseUsd(value.toFixed(6));
}

const PRICE_FILES: Record<string, string> = {
  aws: "aws_gpu.csv",
  gcp: "gcp_gpu.csv",
  lambda: "lambda.csv",
  runpod: "runpod.csv",
};

function loadOffers(dir: string, skipped: Record<string, number>): InstanceOffer[] {
  const skip = (provider: string, reason: string) => {
    const key = `${provider}:${reason}`;
    skipped[key] = (skipped[key] ?? 0) + 1;
  };
  const metadataPath = join(dir, "prices", "gpu_metadata.csv");
  const metadata = new Map<string, number>();
  if (existsSync(metadataPath)) {
    for (const row of parseCsv(readFileSync(metadataPath, "utf8"))) {
      const gb = Number(row.MemoryGB);
      if (row.GPU && gb > 0 && row.Manufacturer === "nvidia") metadata.set(row.GPU, gb);
    }
  }
  const offers: InstanceOffer[] = [];
  const seen = new Set<string>();
  for (const [provider, file] of Object.entries(PRICE_FILES)) {
    const path = join(dir, "prices", file);
    if (!existsSync(path)) continue;
    for (const row of parseCsv(readFileSync(path, "utf8"))) {
      const accelerator = row.AcceleratorName ?? "";
      if (accelerator === "") {
        skip(provider, "no-accelerator"); // CPU instances; GCP host-machine rows (billed separately)
        continue;
      }
      const model = canonicalModel(accelerator, metadata);
      if (!model) {
        skip(provider, "unknown-or-non-nvidia-model");
        continue;
      }
      const count = Number(row.AcceleratorCount);
      if (!Number.isInteger(count) || count < 1) {
        skip(provider, "bad-accelerator-count");
        continue;
      }
      const region = capaRegion(row.Region ?? "");
      if (!region) {
        skip(provider, "unknown-region");
        continue;
      }
      const price = dollars(row.Price);
      if (price === undefined || price === 0) {
        skip(provider, "no-on-demand-price"); // e.g. AWS p5e.48xlarge
        continue;
      }
      const zone = row.AvailabilityZone || row.Region || region;
      // AWS p4de.24xlarge is listed twice per zone (as A100 and A100-80GB): keep the first row.
      const key = `${provider}|${zone}|${row.InstanceType || `${count}x${accelerator}`}`;
      if (row.InstanceType && seen.has(key)) {
        skip(provider, "duplicate-instance-row");
        continue;
      }
      seen.add(key);
      const perGpu = Math.round(price / count);
      const spot = dollars(row.SpotPrice);
      const spotPerGpu = spot !== undefined && spot > 0 ? Math.round(spot / count) : 0;
      if (spot !== undefined && spot >= price) skip(provider, "spot-not-below-on-demand(kept-on-demand-only)");
      offers.push({
        provider,
        region,
        zone: `${provider}:${zone}`,
        instanceType: row.InstanceType || `${count}x${accelerator}`,
        gpuModel: model,
        gpuCount: count,
        vramMib: Number(model.split("-").pop()!.replace("GB", "")) * 1024,
        onDemandPerGpuHour: perGpu,
        interruptiblePerGpuHour: spotPerGpu > 0 && spotPerGpu < perGpu ? spotPerGpu : 0,
      });
    }
  }
  return offers;
}

function loadGpuCountMix(dir: string): Map<number, number> {
  const mix = new Map<number, number>();
  const path = join(dir, "inventories", "alibaba-v2026-spot-gpu", "node_info_df.csv");
  if (existsSync(path)) {
    for (const row of parseCsv(readFileSync(path, "utf8"))) {
      const n = Number(row.gpu_capacity_num);
      if (Number.isInteger(n) && n > 0) mix.set(n, (mix.get(n) ?? 0) + 1);
    }
  }
  return mix.size > 0
    ? mix
    : new Map([
        [1, 3396],
        [4, 10],
        [8, 872],
      ]);
}

function loadPods(dir: string): PodRecord[] {
  const path = join(dir, "traces", "alibaba-gpu-v2023", "openb_pod_list_default.csv");
  const pods: PodRecord[] = [];
  if (existsSync(path)) {
    for (const row of parseCsv(readFileSync(path, "utf8"))) {
      const gpus = Number(row.num_gpu);
      const start = Number(row.creation_time);
      const end = Number(row.deletion_time);
      if (!Number.isInteger(gpus) || gpus < 0 || !(end > start)) continue;
      // Whole GPUs only: a GPU share (gpu_milli < 1000) still takes one GPU in capa.
      pods.push({ gpus, durationSeconds: Math.min(end - start, 7 * 24 * 3600), bestEffort: row.qos === "BE" });
    }
  }
  return pods.length > 0
    ? pods
    : [
        { gpus: 1, durationSeconds: 540, bestEffort: false },
        { gpus: 1, durationSeconds: 6574, bestEffort: true },
        { gpus: 0, durationSeconds: 300, bestEffort: false },
        { gpus: 8, durationSeconds: 36_000, bestEffort: false },
      ];
}

function loadServiceSizes(dir: string): number[] {
  const path = join(dir, "traces", "alibaba-gpu-v2025", "disaggregated_DLRM_trace.csv");
  const perApp = new Map<string, number>();
  if (existsSync(path)) {
    for (const row of parseCsv(readFileSync(path, "utf8"))) {
      if (Number(row.gpu_request) > 0) perApp.set(row.app_name ?? "", (perApp.get(row.app_name ?? "") ?? 0) + 1);
    }
  }
  return perApp.size > 0 ? [...perApp.values()].sort((a, b) => a - b) : [1, 2, 4, 8, 16];
}

/** Built-in fallback: a handful of real per-GPU list prices (same catalogs), so the bench still runs. */
const BUILTIN_OFFERS: Array<[string, string, string, number, string, string]> = [
  ["aws", "us-east", "H100-80GB", 8, "12.29", "3.90"],
  ["aws", "eu-west", "A100-80GB", 8, "5.12", "2.10"],
  ["aws", "us-west", "L4-24GB", 1, "0.80", "0.30"],
  ["gcp", "us-central", "H100-80GB", 8, "11.06", "2.25"],
  ["gcp", "eu-west", "L4-24GB", 1, "0.71", "0.22"],
  ["lambda", "us-east", "H100-80GB", 8, "2.99", "0"],
  ["lambda", "us-west", "A100-40GB", 8, "1.29", "0"],
  ["runpod", "eu-central", "A100-80GB", 1, "1.64", "1.19"],
  ["runpod", "us-central", "L40S-48GB", 1, "0.86", "0.71"],
  ["runpod", "eu-north", "RTX4090-24GB", 1, "0.69", "0.34"],
];

export function loadData(dir = dataDir()): DataSet {
  const skipped: Record<string, number> = {};
  if (existsSync(dir)) {
    const offers = loadOffers(dir, skipped);
    if (offers.length > 0) {
      return {
        source: dir,
        offers,
        skipped,
        gpuCountMix: loadGpuCountMix(dir),
        pods: loadPods(dir),
        serviceSizes: loadServiceSizes(dir),
      };
    }
  }
  const offers = BUILTIN_OFFERS.map(([provider, region, model, count, price, spot]) => ({
    provider,
    region,
    zone: `${provider}:${region}-a`,
    instanceType: `${count}x${model}`,
    gpuModel: model,
    gpuCount: count,
    vramMib: Number(model.split("-").pop()!.replace("GB", "")) * 1024,
    onDemandPerGpuHour: parseUsd(price),
    interruptiblePerGpuHour: parseUsd(spot),
  }));
  return {
    source: `built-in catalog (${dir} not found)`,
    offers,
    skipped,
    gpuCountMix: loadGpuCountMix(dir),
    pods: loadPods(dir),
    serviceSizes: loadServiceSizes(dir),
  };
}
