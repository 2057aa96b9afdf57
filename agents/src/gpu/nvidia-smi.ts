/**
 * Pure parser for `nvidia-smi --query-gpu=... --format=csv,noheader,nounits`. No I/O here, so every quirk of the
 * real output (bracketed "[N/A]" markers, MIG mode, names with odd punctuation, CRLF) is unit-tested on recorded
 * lines.
 */
import { type Gpu, type GpuHealth, normalizeGpuName } from "@capa/domain";
import { NvidiaSmiParseError } from "../errors.js";

/** Queried fields, in output order. Changing this list changes the parser: keep them together. */
export const NVIDIA_SMI_FIELDS = [
  "index",
  "uuid",
  "name",
  "memory.total",
  "memory.used",
  "utilization.gpu",
  "temperature.gpu",
  "mig.mode.current",
  "driver_version",
  "pci.bus_id",
] as const;

export const NVIDIA_SMI_ARGS: readonly string[] = [
  `--query-gpu=${NVIDIA_SMI_FIELDS.join(",")}`,
  "--format=csv,noheader,nounits",
];

/** One GPU as nvidia-smi reported it; `undefined` where it printed a marker such as "[N/A]" or "[Not Supported]". */
export interface SmiGpuRow {
  index: number;
  uuid: string | undefined;
  name: string;
  memoryTotalMib: number | undefined;
  memoryUsedMib: number | undefined;
  utilizationPct: number | undefined;
  temperatureC: number | undefined;
  /** undefined: the GPU cannot do MIG ("[N/A]" on T4, V100, consumer cards). */
  migMode: "enabled" | "disabled" | undefined;
  driverVersion: string | undefined;
  pciBusId: string | undefined;
}

/** "[N/A]", "[Not Supported]", "[Unknown Error]", "[GPU requires reset]", "[Insufficient Permissions]", bare "N/A". */
function isMarker(value: string): boolean {
  return value === "" || value === "N/A" || /^\[.*\]$/.test(value);
}

function text(value: string): string | undefined {
  return isMarker(value) ? undefined : value;
}

/** Numbers come without units thanks to `nounits`; a unit suffix is tolerated in case a caller forgot the flag. */
function number(value: string, field: string, line: number): number | undefined {
  if (isMarker(value)) return undefined;
  const match = /^(-?\d+(?:\.\d+)?)(?:\s*(?:MiB|%|C))?$/.exec(value);
  if (!match) throw new NvidiaSmiParseError(`line ${line}: ${field} is not a number: ${JSON.stringify(value)}`);
  return Number(match[1]);
}

function migMode(value: string, line: number): SmiGpuRow["migMode"] {
  if (isMarker(value)) return undefined;
  const v = value.toLowerCase();
  if (v === "enabled" || v === "disabled") return v;
  throw new NvidiaSmiParseError(`line ${line}: mig.mode.current is ${JSON.stringify(value)}`);
}

/** Parses the whole output; throws NvidiaSmiParseError naming the first bad line. Empty output = no GPUs. */
export function parseNvidiaSmiCsv(output: string): SmiGpuRow[] {
  const rows: SmiGpuRow[] = [];
  const seen = new Set<number>();
  const lines = output.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.trim();
    if (raw === "") continue;
    const lineNo = i + 1;
    const parts = raw.split(",").map((p) => p.trim());
    const n = NVIDIA_SMI_FIELDS.length;
    if (parts.length < n) {
      throw new NvidiaSmiParseError(`line ${lineNo}: expected ${n} fields, got ${parts.length}: ${raw.slice(0, 200)}`);
    }
    // Only the name can contain a comma: the first two and the last seven fields are fixed.
    const tail = parts.slice(parts.length - 7);
    const name = parts.slice(2, parts.length - 7).join(", ");
    const index = number(parts[0]!, "index", lineNo);
    if (index === undefined || !Number.isInteger(index) || index < 0) {
      throw new NvidiaSmiParseError(`line ${lineNo}: index is not a GPU index: ${JSON.stringify(parts[0])}`);
    }
    if (seen.has(index)) throw new NvidiaSmiParseError(`line ${lineNo}: GPU index ${index} appears twice`);
    seen.add(index);
    rows.push({
      index,
      uuid: text(parts[1]!),
      name,
      memoryTotalMib: number(tail[0]!, "memory.total", lineNo),
      memoryUsedMib: number(tail[1]!, "memory.used", lineNo),
      utilizationPct: number(tail[2]!, "utilization.gpu", lineNo),
      temperatureC: number(tail[3]!, "temperature.gpu", lineNo),
      migMode: migMode(tail[4]!, lineNo),
      driverVersion: text(tail[5]!),
      pciBusId: text(tail[6]!),
    });
  }
  return rows.sort((a, b) => a.index - b.index);
}

/**
 * A GPU whose identity or memory cannot be read is "failed": nvidia-smi prints "[Unknown Error]" or
 * "[GPU requires reset]" for a device that has fallen off the bus (Xid 79), and no task should land there.
 */
export function healthOf(row: SmiGpuRow): GpuHealth {
  if (row.uuid === undefined || row.memoryTotalMib === undefined || isMarker(row.name)) return "failed";
  return "ok";
}

/** Domain view: canonical model name, zeros where nvidia-smi had no value. */
export function smiRowToGpu(row: SmiGpuRow): Gpu {
  const health = healthOf(row);
  return {
    index: row.index,
    uuid: row.uuid ?? `GPU-unknown-${row.pciBusId ?? row.index}`,
    model:
      row.memoryTotalMib !== undefined && !isMarker(row.name)
        ? normalizeGpuName(row.name, row.memoryTotalMib)
        : "UNKNOWN",
    vramMib: row.memoryTotalMib ?? 0,
    health,
    migEnabled: row.migMode === "enabled",
    utilizationPct: row.utilizationPct ?? 0,
    memoryUsedMib: row.memoryUsedMib ?? 0,
    temperatureC: row.temperatureC ?? 0,
    driverVersion: row.driverVersion ?? "",
  };
}
