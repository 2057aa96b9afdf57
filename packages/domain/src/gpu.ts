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

/** "NVIDIA H100 80GB HBM3" + 81559 → "H100-80GB"; "Tesla T4" + 15360 → "T4-16GB". */
export function normalizeGpuName(name: string, vramMib: number): string {
  const cleaned = name
    .toUpperCase()
    .replace(/^NVIDIA\s+/, "")
    .replace(/^(TESLA|GEFORCE|QUADRO)\s+/, "")
    .replace(/^RTX\s+(A\d{4})\b/, "$1")
    .replace(/\bRTX\s+(\d+)\s+ADA\b.*$/, "RTX$1ADA")
    .replace(/\bRTX\s+(\d)/, "RTX$1")
    .replace(/\s+(PCIE|SXM\d?|NVL|HBM\d?E?|GDDR\d?X?)\b.*$/, "")
    .trim();
  const family = cleaned.split(/[\s-]+/)[0] ?? cleaned;
  return canonicalGpuModel(family || "UNKNOWN", vramMib);
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
