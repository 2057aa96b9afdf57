/**
 * Reads the public price catalogs from disk (the only I/O in this package). The directory defaults to
 * `CAPA_PRICES_DIR`, else `../shared/data/prices` beside the repository; when it is absent, the built-in
 * defaults (copied from the same catalogs) are used and `source` says so.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { BUILTIN_ENTRIES } from "./builtin.js";
import { CATALOG_FILES, type CatalogEntry, parseCatalog, parseGpuMetadata } from "./catalog.js";

export interface LoadedCatalog {
  entries: CatalogEntry[];
  skipped: Record<string, number>;
  /** The directory read, or "built-in". */
  source: string;
}

export function defaultPricesDir(): string {
  if (process.env.CAPA_PRICES_DIR) return process.env.CAPA_PRICES_DIR;
  // packages/catalog/{src,dist}/load.* → repository root → ../shared/data/prices
  const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
  return join(repoRoot, "..", "shared", "data", "prices");
}

export function loadCatalog(dir: string = defaultPricesDir()): LoadedCatalog {
  if (!existsSync(dir)) return { entries: [...BUILTIN_ENTRIES], skipped: {}, source: "built-in" };
  const metadataPath = join(dir, "gpu_metadata.csv");
  const metadata = existsSync(metadataPath) ? parseGpuMetadata(readFileSync(metadataPath, "utf8")) : undefined;
  const entries: CatalogEntry[] = [];
  const skipped: Record<string, number> = {};
  for (const [provider, file] of Object.entries(CATALOG_FILES)) {
    const path = join(dir, file);
    if (!existsSync(path)) continue;
    const report = parseCatalog(provider, readFileSync(path, "utf8"), metadata);
    entries.push(...report.entries);
    for (const [reason, n] of Object.entries(report.skipped)) skipped[`${provider}:${reason}`] = n;
  }
  if (entries.length === 0) return { entries: [...BUILTIN_ENTRIES], skipped, source: "built-in" };
  return { entries, skipped, source: dir };
}
