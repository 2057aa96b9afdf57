/**
 * Default network tables: egress price between capa regions and round-trip time between them. Data, not code:
 * a PlaceOptions or engine option can replace them. capa region names are provider-neutral (`us-east`,
 * `eu-west`, ...); the benchmark fixture documents how catalog regions (e.g. AWS us-east-1) map onto them.
 *
 * Figures are public list-price ballparks (cloud inter-region transfer is $0.01–0.02/GB inside a continent and
 * $0.05–0.14/GB across; RTTs from public inter-region latency dashboards), rounded: good enough to rank
 * placements, not to bill.
 */
import type { Micros } from "@capa/domain";

export interface NetworkTables {
  /** Micros per GB moved from the first region to the second. */
  egressMicrosPerGb(from: string, to: string): Micros;
  /** Round trip in milliseconds. */
  rttMs(from: string, to: string): number;
}

/** Continent of each known capa region; unknown regions fall back to their residency prefix ("eu-x" → "eu"). */
export const REGION_CONTINENT: Readonly<Record<string, string>> = {
  "us-east": "na",
  "us-central": "na",
  "us-west": "na",
  "us-south": "na",
  "ca-central": "na",
  "sa-east": "sa",
  "eu-west": "eu",
  "eu-central": "eu",
  "eu-north": "eu",
  "eu-south": "eu",
  "me-central": "me",
  "ap-northeast": "ap",
  "ap-southeast": "ap",
  "ap-east": "ap",
  "ap-south": "ap",
  "au-southeast": "oc",
};

/** Egress micros per GB by continent pair (same continent, different region; across continents). */
const EGRESS_SAME_CONTINENT: Micros = 20_000;
const EGRESS_ACROSS: Record<string, Micros> = {
  default: 90_000,
  "ap|*": 120_000,
  "sa|*": 140_000,
  "oc|*": 140_000,
  "me|*": 110_000,
};

/** Measured-style RTTs (ms) between known capa regions; symmetric. Missing pairs use continent defaults. */
const RTT_PAIRS: Record<string, number> = {
  "us-east|us-central": 25,
  "us-east|us-west": 65,
  "us-east|us-south": 35,
  "us-east|ca-central": 20,
  "us-central|us-west": 40,
  "us-west|ca-central": 70,
  "us-east|eu-west": 75,
  "us-east|eu-central": 90,
  "us-east|eu-north": 95,
  "us-west|eu-west": 135,
  "us-west|eu-central": 145,
  "eu-west|eu-central": 15,
  "eu-west|eu-north": 30,
  "eu-central|eu-north": 25,
  "eu-west|eu-south": 25,
  "eu-central|eu-south": 15,
  "us-west|ap-northeast": 105,
  "us-east|ap-northeast": 150,
  "eu-west|ap-northeast": 215,
  "eu-central|ap-northeast": 225,
  "ap-northeast|ap-southeast": 70,
  "ap-northeast|ap-east": 45,
  "ap-east|ap-southeast": 40,
  "ap-southeast|ap-south": 60,
  "us-west|ap-southeast": 165,
  "eu-west|ap-southeast": 160,
  "eu-central|ap-southeast": 155,
  "us-east|sa-east": 115,
  "eu-central|me-central": 100,
  "ap-southeast|au-southeast": 90,
};
const RTT_SAME_CONTINENT_MS = 40;
const RTT_ACROSS_MS = 180;

export function continentOf(region: string): string {
  return REGION_CONTINENT[region] ?? region.split("-")[0] ?? region;
}

export const DEFAULT_TABLES: NetworkTables = {
  egressMicrosPerGb(from, to) {
    if (from === "" || to === "" || from === to) return 0;
    const a = continentOf(from);
    const b = continentOf(to);
    if (a === b) return EGRESS_SAME_CONTINENT;
    return EGRESS_ACROSS[`${a}|*`] ?? EGRESS_ACROSS.default!;
  },
  rttMs(from, to) {
    if (from === to) return 1;
    const known = RTT_PAIRS[`${from}|${to}`] ?? RTT_PAIRS[`${to}|${from}`];
    if (known !== undefined) return known;
    return continentOf(from) === continentOf(to) ? RTT_SAME_CONTINENT_MS : RTT_ACROSS_MS;
  },
};
