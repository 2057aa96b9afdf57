/**
 * The filters, in the order they run. Order matters for speed and for what an explanation counts: the
 * cheapest and most selective checks come first (bucket-level ones reject whole (model, region) groups without
 * visiting agents), and each candidate is charged to the first filter that rejects it.
 */
import type { Filter } from "../pipeline.js";
import { capacityFilter } from "./capacity.js";
import { drainingFilter } from "./draining.js";
import { driverFilter } from "./driver.js";
import { fabricFilter } from "./fabric.js";
import { freshnessFilter } from "./freshness.js";
import { gpuModelFilter } from "./gpu-model.js";
import { labelsFilter } from "./labels.js";
import { maxPriceFilter } from "./max-price.js";
import { regionAllowedFilter } from "./region-allowed.js";
import { regionExcludedFilter } from "./region-excluded.js";
import { residencyFilter } from "./residency.js";
import { vramFilter } from "./vram.js";

export const FILTERS: readonly Filter[] = [
  // Bucket level: one check rejects every agent of a (model, region, residency).
  gpuModelFilter,
  vramFilter,
  residencyFilter,
  regionAllowedFilter,
  regionExcludedFilter,
  // Price level: a ceiling cuts the dearer end of each bucket.
  maxPriceFilter,
  // Fabric domain level (gangs).
  fabricFilter,
  // Candidate level: health and operator state first, then fit (vram also runs here, for mixed buckets).
  drainingFilter,
  freshnessFilter,
  driverFilter,
  labelsFilter,
  capacityFilter,
];

export const BUCKET_FILTERS = FILTERS.filter((f) => f.bucket);
export const PRICE_FILTERS = FILTERS.filter((f) => f.maxPrice);
export const DOMAIN_FILTERS = FILTERS.filter((f) => f.domain);
export const CANDIDATE_FILTERS = FILTERS.filter((f) => f.candidate);
