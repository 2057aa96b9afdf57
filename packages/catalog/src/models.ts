import { KNOWN_GPUS } from "@capa/domain";

/**
 * Catalog accelerator names → capa's canonical "<FAMILY>-<GB>GB". Variants that differ only in packaging or
 * interconnect (-SXM, -NVL, -NVLINK, -MEGA, -Ada stays: it is another card) fold into their family. Memory comes
 * from the name ("A100-80GB"), then from capa's own table (the catalog's metadata lists H200 and B200 at 80 GB,
 * which is wrong), then from gpu_metadata.csv.
 */
export function canonicalCatalogModel(name: string, metadataGb?: ReadonlyMap<string, number>): string | undefined {
  if (!name) return undefined;
  const upper = name.toUpperCase();
  const explicit = /^(.*?)-(\d+)GB/.exec(upper);
  const family = (explicit?.[1] ?? upper)
    .replace(/-(SXM\d?|NVL|NVLINK|MEGA|PCIE)$/, "")
    .replace(/^RTXA(\d)/, "A$1")
    .replace(/-ADA$/, "ADA")
    .replace(/-/g, "");
  if (family === "T4G") return "T4-16GB";
  const gb = explicit ? Number(explicit[2]) : (KNOWN_GPUS[family] ?? metadataGb?.get(name) ?? metadataGb?.get(family));
  if (!gb) return undefined;
  return `${family}-${gb}GB`;
}
