/**
 * Workload traces: one job per row, `job_id,submit_s,duration_s,gpus,gpu_model,kind` plus optional columns
 * `replicas` (1), `region` (allowed regions, `|`-separated), `max_price` ($/GPU-hour cap), `data_region`,
 * `priority` (integer), `budget` ($ for the whole job), `interruptible` (0/1/true/false). Other columns are
 * ignored. `gpus` is GPUs per replica; `gpu_model` is empty or `any` for any model, else `|`-separated names
 * (`H100-80GB|A100-80GB`, `H100`). Every value is checked; the first bad one throws a TraceError naming its
 * line and column. Pure: text in, jobs out.
 */
import { canonicalCatalogModel } from "@capa/catalog";
import { defaultJobSpec, JOB_KINDS, type JobKind, type JobSpec, KNOWN_GPUS, type Micros, parseUsd } from "@capa/domain";
import { type CsvRow, type CsvTable, readCsv } from "./csv.js";
import { TraceError } from "./errors.js";

export const TRACE_COLUMNS = ["job_id", "submit_s", "duration_s", "gpus", "gpu_model", "kind"] as const;
export const TRACE_OPTIONAL_COLUMNS = [
  "replicas",
  "region",
  "max_price",
  "data_region",
  "priority",
  "budget",
  "interruptible",
] as const;

export interface TraceJob {
  id: string;
  /** Line of the row in its file, for messages. */
  line: number;
  submitS: number;
  durationS: number;
  gpus: number;
  replicas: number;
  /** Canonical models; empty = any. */
  gpuModels: string[];
  kind: JobKind;
  regions: string[];
  maxPricePerGpuHour: Micros;
  dataRegion: string;
  priority: number;
  budget: Micros;
  interruptible: boolean;
}

/** Canonical model name for a trace or fleet cell, or undefined when capa does not know the GPU. */
export function knownModel(name: string): string | undefined {
  const canonical = canonicalCatalogModel(name.trim());
  if (!canonical) return undefined;
  const family = canonical.replace(/-\d+GB$/, "");
  return KNOWN_GPUS[family] !== undefined ? canonical : undefined;
}

/** A cell reader bound to one row: each getter throws a TraceError naming the cell. */
export class Cells {
  constructor(
    private readonly file: string,
    private readonly table: CsvTable,
    readonly row: CsvRow,
    private readonly make: typeof TraceError,
  ) {}

  has(name: string): boolean {
    return this.table.columnOf(name) > 0 && (this.row.cells[name] ?? "") !== "";
  }

  text(name: string): string {
    return this.row.cells[name] ?? "";
  }

  fail(name: string, detail: string, cause?: unknown): never {
    throw new this.make(this.file, this.row.line, this.table.columnOf(name), name, detail, { cause });
  }

  number(name: string, opts: { integer?: boolean; min?: number; max?: number } = {}): number {
    const raw = this.text(name);
    const value = raw === "" ? Number.NaN : Number(raw);
    const kind = opts.integer ? "an integer" : "a number";
    if (!Number.isFinite(value) || (opts.integer && !Number.isInteger(value))) {
      this.fail(name, `must be ${kind}, got ${JSON.stringify(raw)}`);
    }
    if (opts.min !== undefined && value < opts.min) {
      this.fail(name, `must be ${opts.min === 0 ? "non-negative" : `≥ ${opts.min}`}, got ${raw}`);
    }
    if (opts.max !== undefined && value > opts.max) this.fail(name, `must be ≤ ${opts.max}, got ${raw}`);
    return value;
  }

  usd(name: string): Micros {
    if (!this.has(name)) return 0;
    try {
      const micros = parseUsd(this.text(name));
      if (micros < 0) this.fail(name, `must be non-negative, got ${this.text(name)}`);
      return micros;
    } catch (error) {
      if (error instanceof TraceError) throw error;
      return this.fail(name, (error as Error).message, error);
    }
  }

  models(name: string): string[] {
    const raw = this.text(name).trim();
    if (raw === "" || raw.toLowerCase() === "any" || raw === "*") return [];
    return raw.split("|").map((part) => {
      const model = knownModel(part);
      if (!model)
        this.fail(name, `unknown GPU model ${JSON.stringify(part)} (known: ${Object.keys(KNOWN_GPUS).join(", ")})`);
      return model;
    });
  }
}

const MAX_DURATION_S = 366 * 24 * 3600;

/** Parses a trace CSV; `file` names it in errors. Jobs come back in file order. */
export function parseTrace(text: string, file = "trace"): TraceJob[] {
  const fail = (line: number, column: number, name: string, detail: string, cause?: unknown) =>
    new TraceError(file, line, column, name, detail, { cause });
  const table = readCsv(text, TRACE_COLUMNS, fail);
  const seen = new Map<string, number>();
  return table.rows.map((row) => {
    const c = new Cells(file, table, row, TraceError);
    const id = c.text("job_id");
    if (id === "") c.fail("job_id", "must not be empty");
    const earlier = seen.get(id);
    if (earlier !== undefined) c.fail("job_id", `duplicate job id ${JSON.stringify(id)} (first on line ${earlier})`);
    seen.set(id, row.line);
    const kind = c.text("kind").toLowerCase() || "batch";
    if (!(JOB_KINDS as readonly string[]).includes(kind)) {
      c.fail("kind", `must be one of ${JOB_KINDS.join(", ")}, got ${JSON.stringify(c.text("kind"))}`);
    }
    const interruptible = c.text("interruptible").toLowerCase();
    if (!["", "0", "1", "true", "false"].includes(interruptible)) {
      c.fail("interruptible", `must be 0, 1, true or false, got ${JSON.stringify(c.text("interruptible"))}`);
    }
    return {
      id,
      line: row.line,
      submitS: c.number("submit_s", { min: 0 }),
      durationS: c.number("duration_s", { min: 0, max: MAX_DURATION_S }),
      gpus: c.number("gpus", { integer: true, min: 0, max: 64 }),
      replicas: c.has("replicas") ? c.number("replicas", { integer: true, min: 1, max: 1024 }) : 1,
      gpuModels: c.models("gpu_model"),
      kind: kind as JobKind,
      regions: c.has("region")
        ? c
            .text("region")
            .split("|")
            .map((r) => r.trim())
            .filter(Boolean)
        : [],
      maxPricePerGpuHour: c.usd("max_price"),
      dataRegion: c.text("data_region"),
      priority: c.has("priority") ? c.number("priority", { integer: true, min: -1000, max: 1000 }) : 0,
      budget: c.usd("budget"),
      interruptible: interruptible === "1" || interruptible === "true",
    };
  });
}

/** The job spec the engine sees for a trace job: the trace's duration is its expected duration. */
export function specOf(job: TraceJob): JobSpec {
  return defaultJobSpec({
    name: job.id,
    kind: job.kind,
    replicas: job.replicas,
    gpusPerReplica: job.gpus,
    gpuModels: job.gpuModels,
    regions: job.regions,
    dataRegion: job.dataRegion,
    maxPricePerGpuHour: job.maxPricePerGpuHour,
    budget: job.budget,
    priority: job.priority,
    interruptible: job.interruptible,
    expectedDurationSeconds: Math.max(1, Math.round(job.durationS)),
  });
}
