/**
 * Loads the public data the benchmark is built from (../shared/data relative to the repository root, or
 * CAPA_DATA_DIR): GPU prices from the SkyPilot catalogs (AWS, GCP, Lambda, RunPod), the GPU count mix of a real
 * fleet (Alibaba 2026 spot inventory) and job mixes from the Alibaba PAI traces. Columns are read by header
 * name; oddities are validated and counted, never guessed. Without the directory a small built-in catalog is
 * used and the report says so.
 *
 * Prices, model names and the catalog-region → capa-region mapping come from @capa/catalog.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { loadCatalog, parseCsvRecords as parseCsv } from "@capa/catalog";
import { defaultDataDir, gpuCountMix, INVENTORY_FILE, type InstanceOffer, offersFromCatalog } from "@capa/replay";

export type { InstanceOffer };

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

/** CAPA_DATA_DIR, else ../shared/data beside the repository. */
export const dataDir = defaultDataDir;

/** Priced instance offers from @capa/catalog (the same parser, model names and region mapping the demo fleet uses). */
function loadOffers(dir: string, skipped: Record<string, number>): { offers: InstanceOffer[]; source: string } {
  const catalog = loadCatalog(join(dir, "prices"));
  Object.assign(skipped, catalog.skipped);
  return {
    offers: offersFromCatalog(catalog.entries),
    source: catalog.source === "built-in" ? `built-in catalog (${dir} not found)` : dir,
  };
}

function loadGpuCountMix(dir: string): Map<number, number> {
  const path = join(dir, INVENTORY_FILE);
  return gpuCountMix(existsSync(path) ? readFileSync(path, "utf8") : undefined);
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

export function loadData(dir = dataDir()): DataSet {
  const skipped: Record<string, number> = {};
  const { offers, source } = loadOffers(dir, skipped);
  return {
    source,
    offers,
    skipped,
    gpuCountMix: loadGpuCountMix(dir),
    pods: loadPods(dir),
    serviceSizes: loadServiceSizes(dir),
  };
}
