/**
 * Catalog regions → capa regions. capa regions are coarse, provider-neutral locations ("<residency>-<area>");
 * their first token is the residency zone ("eu-west" → "eu"), which data-residency constraints match on.
 * Mapping (documented in the README):
 * - AWS/GCP/Lambda: by geography (us-east-1, us-east4, us-east-2 → us-east; europe-west4, eu-west-1 → eu-west; ...).
 * - RunPod publishes country codes: US → us-central, CA → ca-central, NL → eu-west, CZ/RO → eu-central,
 *   IS/NO/SE → eu-north.
 */
const EXACT: Record<string, string> = {
  // RunPod country codes
  US: "us-central",
  CA: "ca-central",
  NL: "eu-west",
  CZ: "eu-central",
  RO: "eu-central",
  IS: "eu-north",
  NO: "eu-north",
  SE: "eu-north",
  // GCP regions that do not follow the prefix rules below
  "us-central1": "us-central",
  "europe-west3": "eu-central",
  "europe-west6": "eu-central",
  "europe-west8": "eu-south",
  "europe-central2": "eu-central",
  "europe-north1": "eu-north",
  // AWS / Lambda
  "eu-north-1": "eu-north",
  "eu-south-1": "eu-south",
  "europe-central-1": "eu-central",
  "europe-south-1": "eu-south",
  "us-midwest-1": "us-central",
  "ca-central-1": "ca-central",
};

const PREFIXES: [RegExp, string][] = [
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
  [/^southamerica/, "sa-east"],
  [/^me-/, "me-central"],
];

/** The capa region for a catalog region, or undefined when unknown (the row is then skipped and counted). */
export function capaRegion(cloudRegion: string): string | undefined {
  const exact = EXACT[cloudRegion];
  if (exact) return exact;
  for (const [pattern, region] of PREFIXES) if (pattern.test(cloudRegion)) return region;
  return undefined;
}
