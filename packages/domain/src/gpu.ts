/**
 * GPU model names. Adverts, prices and job specs use one canonical spelling, "<family>-<GB>GB"
 * (e.g. "H100-80GB", "A100-40GB", "L4-24GB"), so a tenant's `--gpu-model H100-80GB` matches what
 * nvidia-smi calls "NVIDIA H100 80GB HBM3".
 */
export interface GpuModelInfo {
  /** Canonical name, e.g. "H100-80GB". */
  model: string;
  family: string;
  vramMib: number;
}

/** Known families with their default memory, used for simulated GPUs and names without a size. */
export const KNOWN_GPUS: Readonly<Record<string, number>> = {
  B200: 180,
  H200: 141,
  H100: 80,
  H800: 80,
  GH200: 96,
  A100: 40,
  A800: 80,
  A10G: 24,
  A10: 24,
  A40: 48,
  A6000: 48,
  L40S: 48,
  L40: 48,
  L4: 24,
  T4: 16,
  V100: 16,
  P100: 16,
  RTX4090: 24,
  RTX3090: 24,
};

const MIB_PER_GB = 1024;

/** Canonical name for a family and a memory size in MiB (rounded to the marketed GB). */
export function canonicalGpuModel(family: string, vramMib: number): string {
  const upper = family.toUpperCase();
  // Usable memory is a little below the marketed size (an "80GB" H100 reports 81559 MiB, an L4 23034 MiB):
  // prefer the family's known size when the reading is within reach of it.
  const known = KNOWN_GPUS[upper];
  const gb = vramMib / MIB_PER_GB;
  const size = known !== undefined && gb >= known * 0.85 && gb <= known * 1.05 ? known : marketedGb(vramMib);
  return `${upper}-${size}GB`;
}

/** nvidia-smi reports usable MiB (e.g. 81559 for an 80 GB card); round to the marketed size. */
export function marketedGb(vramMib: number): number {
  const gb = vramMib / MIB_PER_GB;
  const marketed = [8, 10, 11, 12, 16, 20, 22, 24, 32, 40, 44, 48, 64, 80, 94, 96, 141, 144, 180, 192];
  let best = Math.round(gb);
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const size of marketed) {
    const distance = Math.abs(size - gb) / size;
    if (distance < bestDistance && distance < 0.1) {
      best = size;
      bestDistance = distance;
    }
  }
  return best;
}

/** A marketing or nvidia-smi name without vendor prefixes and packaging suffixes: "NVIDIA H100 80GB HBM3" → "H100 80GB". */
function cleanGpuName(name: string): string {
  return name
    .toUpperCase()
    .trim()
    .replace(/^NVIDIA\s+/, "")
    .replace(/^(TESLA|GEFORCE|QUADRO)\s+/, "")
    .replace(/^RTX\s+(A\d{4})\b/, "$1")
    .replace(/\bRTX\s+(\d+)\s+ADA\b.*$/, "RTX$1ADA")
    .replace(/\bRTX\s+(\d)/, "RTX$1")
    .replace(/[\s-]+(PCIE|SXM\d?|NVL|HBM\d?E?|GDDR\d?X?)\b.*$/, "")
    .trim();
}

/** "NVIDIA H100 80GB HBM3" + 81559 → "H100-80GB"; "Tesla T4" + 15360 → "T4-16GB". */
export function normalizeGpuName(name: string, vramMib: number): string {
  const cleaned = cleanGpuName(name);
  const family = cleaned.split(/[\s-]+/)[0] ?? cleaned;
  return canonicalGpuModel(family || "UNKNOWN", vramMib);
}

/** The canonical names of the catalog's families at their default size, e.g. "H100-80GB". */
export function catalogGpuModels(): string[] {
  return Object.entries(KNOWN_GPUS).map(([family, gb]) => `${family}-${gb}GB`);
}

export type GpuModelQuery =
  | { ok: true; family: string /** Absent for a family alone ("h100"). */; model?: string }
  | { ok: false; message: string };

/**
 * What a tenant's GPU model name means, given the models capa knows (the catalog's and those agents advertise):
 * case and spacing are ignored, "h100-80gb", "H100 80GB" and "NVIDIA H100 80GB HBM3" are "H100-80GB", and a
 * family alone ("h100") names the family. A family nobody knows is refused with the known models named, so a
 * typo is an error at submit instead of a job that waits forever.
 */
export function parseGpuModelQuery(input: string, known: Iterable<string>): GpuModelQuery {
  const cleaned = cleanGpuName(input);
  const knownModels = [...new Set([...catalogGpuModels(), ...known])].sort();
  const families = new Set([...Object.keys(KNOWN_GPUS), ...knownModels.map(gpuFamilyOf)]);
  if (families.has(cleaned)) return { ok: true, family: cleaned };
  // A size ends in "GB" ("A10G" is a family, "A10G-24GB" a model); the family is the shortest prefix that parses.
  const match = /^([A-Z0-9]+?)[\s-]*(\d+)\s*GI?B$/.exec(cleaned);
  const family = match?.[1] ?? "";
  if (!match || !families.has(family)) {
    return {
      ok: false,
      message: `unknown GPU model ${JSON.stringify(input.slice(0, 64))}; known models: ${knownModels.join(", ")}`,
    };
  }
  return { ok: true, family, model: `${family}-${Number(match[2])}GB` };
}

/** "H100-80GB" → "H100". */
export function gpuFamilyOf(model: string): string {
  return model.toUpperCase().replace(/-\d+GB$/, "");
}

/**
 * A job spec's accepted models, canonical: each name through parseGpuModelQuery, a family alone expanded to
 * every known size of it. Violations name the offending entry (`<field>[i]`).
 */
export function resolveGpuModels(
  names: readonly string[],
  known: Iterable<string>,
  field: string,
): { models: string[]; violations: { field: string; message: string }[] } {
  const knownList = [...new Set([...catalogGpuModels(), ...known])];
  const models = new Set<string>();
  const violations: { field: string; message: string }[] = [];
  names.forEach((name, i) => {
    if (name === "") return; // validation names empty entries
    const q = parseGpuModelQuery(name, knownList);
    if (!q.ok) violations.push({ field: `${field}[${i}]`, message: q.message });
    else if (q.model) models.add(q.model);
    else for (const m of knownList) if (gpuFamilyOf(m) === q.family) models.add(m);
  });
  return { models: [...models].sort(), violations };
}

export class GpuSpecError extends Error {
  override name = "GpuSpecError";
}

/**
 * Parses a simulation spec: "4xH100-80GB,2xA100-40GB" or "8xH100" (default memory).
 */
export function parseGpuSpec(spec: string): GpuModelInfo[] {
  const result: GpuModelInfo[] = [];
  for (const part of spec
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    const match = /^(\d+)\s*[xX]\s*([A-Za-z0-9]+?)(?:-(\d+)GB)?$/.exec(part);
    if (!match) throw new GpuSpecError(`invalid GPU spec "${part}": expected COUNTxMODEL[-NNGB], e.g. 4xH100-80GB`);
    const count = Number(match[1]);
    const family = (match[2] ?? "").toUpperCase();
    const gb = match[3] ? Number(match[3]) : KNOWN_GPUS[family];
    if (gb === undefined) throw new GpuSpecError(`unknown GPU model "${family}": give its memory, e.g. ${family}-48GB`);
    if (count < 1 || count > 64) throw new GpuSpecError(`GPU count must be 1..64 in "${part}"`);
    for (let i = 0; i < count; i++) result.push({ model: `${family}-${gb}GB`, family, vramMib: gb * MIB_PER_GB });
  }
  if (result.length === 0) throw new GpuSpecError("empty GPU spec");
  return result;
}
