/**
 * The default fleet, generated from the public data (the only file reading in this package): prices from the
 * catalogs in `<dir>/prices` (@capa/catalog, built-in ones without it) and the GPUs-per-machine mix of the
 * Alibaba 2026 inventory in `<dir>/inventories` (a built-in mix without it).
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { loadCatalog } from "@capa/catalog";
import { mulberry32 } from "@capa/placement";
import { generateFleet, gpuCountMix, type InstanceOffer, offersFromCatalog } from "./fleet.js";

export const INVENTORY_FILE = join("inventories", "alibaba-v2026-spot-gpu", "node_info_df.csv");

/** `CAPA_DATA_DIR`, else ../shared/data beside the repository. */
export function defaultDataDir(): string {
  if (process.env.CAPA_DATA_DIR) return process.env.CAPA_DATA_DIR;
  // packages/replay/{src,dist}/data.* → repository root → ../shared/data
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
  return join(root, "..", "shared", "data");
}

export interface FleetData {
  offers: InstanceOffer[];
  mix: Map<number, number>;
  skipped: Record<string, number>;
  /** What the fleet was made from, in words. */
  source: string;
}

export function loadFleetData(dir = defaultDataDir()): FleetData {
  const catalog = loadCatalog(join(dir, "prices"));
  const inventory = join(dir, INVENTORY_FILE);
  const hasInventory = existsSync(inventory);
  const mix = gpuCountMix(hasInventory ? readFileSync(inventory, "utf8") : undefined);
  const source =
    catalog.source === "built-in"
      ? `built-in catalog and machine mix (${dir} not found)`
      : `${catalog.source} catalogs, ${hasInventory ? inventory : "built-in"} machine mix`;
  return { offers: offersFromCatalog(catalog.entries), mix, skipped: catalog.skipped, source };
}

/** A generated fleet of `size` agents from the data, deterministic per seed. */
export function defaultFleet(size: number, seed: number, nowMs: number, data = loadFleetData()) {
  return generateFleet(size, data.offers, data.mix, mulberry32(seed), nowMs);
}
