/**
 * Converters from the public traces in ../shared/data/traces to capa's trace CSV, and the CSV writer
 * (csv-stringify). Columns are read by header name. Rows that cannot be a capa job are skipped and counted by
 * reason, never guessed. Pure: text in, jobs out.
 * - alibaba-v2023 (openb_pod_list_*.csv, Alibaba PAI, ATC'23): one batch job per pod; GPUs = num_gpu (a GPU
 *   share, gpu_milli < 1000, still takes one GPU in capa); runs from scheduled_time (else creation_time) to
 *   deletion_time; best-effort QoS = interruptible; gpu_spec (`V100M16|V100M32`) → accepted models where capa
 *   knows them.
 * - alibaba-v2025 (disaggregated_DLRM_trace.csv, NSDI'25): one inference job per GPU instance, creation to
 *   deletion; instances whose times lie outside the trace window (empty) are skipped.
 */
import { parseCsvRecords } from "@capa/catalog";
import { stringify } from "csv-stringify/sync";
import { knownModel, TRACE_COLUMNS, TRACE_OPTIONAL_COLUMNS, type TraceJob } from "./trace.js";

export const TRACE_FORMATS = ["alibaba-v2023", "alibaba-v2025"] as const;
export type TraceFormat = (typeof TRACE_FORMATS)[number];

export interface Conversion {
  jobs: TraceJob[];
  skipped: Record<string, number>;
}

export interface ConvertOptions {
  /** Longer runs are cut to this (default 7 days: a replay is about placement, not month-long tenancies). */
  maxDurationS?: number;
}

const DEFAULT_MAX_DURATION_S = 7 * 24 * 3600;

/** Alibaba's `gpu_spec` names: V100M16 = V100 16 GB, T4, P100, A10; G1–G3 are undisclosed (any model). */
function alibabaModels(spec: string): string[] {
  const out: string[] = [];
  for (const part of spec.split("|").filter(Boolean)) {
    const m = /^([A-Z]+\d+)(?:M(\d+))?$/.exec(part.trim().toUpperCase());
    const model = m ? knownModel(m[2] ? `${m[1]}-${m[2]}GB` : m[1]!) : undefined;
    if (!model) return [];
    out.push(model);
  }
  return out;
}

function base(id: string, line: number): TraceJob {
  return {
    id,
    line,
    submitS: 0,
    durationS: 0,
    gpus: 1,
    replicas: 1,
    gpuModels: [],
    kind: "batch",
    regions: [],
    maxPricePerGpuHour: 0,
    dataRegion: "",
    priority: 0,
    budget: 0,
    interruptible: false,
  };
}

type Row = Record<string, string>;

/** One Alibaba 2023 pod as a job, or why it is skipped. */
function fromPod(row: Row, line: number, maxDuration: number): TraceJob | string {
  const gpus = Number(row.num_gpu);
  const created = Number(row.creation_time);
  const scheduled = Number(row.scheduled_time);
  const end = Number(row.deletion_time);
  const start = scheduled > 0 ? scheduled : created;
  if (!Number.isInteger(gpus) || gpus < 0) return "bad num_gpu";
  if (gpus === 0) return "no GPU";
  if (!Number.isFinite(created) || !(end > start)) return "bad times";
  return {
    ...base(row.name ?? `pod-${line}`, line),
    submitS: created,
    durationS: Math.min(end - start, maxDuration),
    gpus,
    gpuModels: alibabaModels(row.gpu_spec ?? ""),
    kind: gpus >= 8 ? "training" : "batch",
    interruptible: row.qos === "BE",
  };
}

/** One Alibaba 2025 inference instance as a job, or why it is skipped. */
function fromInstance(row: Row, line: number, maxDuration: number): TraceJob | string {
  const gpus = Math.ceil(Number(row.gpu_request));
  if (!(gpus > 0)) return "no GPU";
  const created = Number(row.creation_time);
  const end = Number(row.deletion_time);
  if (row.creation_time === "" || row.deletion_time === "" || !(end > created)) return "outside the trace window";
  return {
    ...base(row.instance_sn ?? `instance-${line}`, line),
    durationS: Math.round(Math.min(end - created, maxDuration) * 1000) / 1000,
    submitS: Math.round(created * 1000) / 1000,
    gpus,
    kind: "inference",
  };
}

export function convertTrace(format: TraceFormat, text: string, options: ConvertOptions = {}): Conversion {
  const maxDuration = options.maxDurationS ?? DEFAULT_MAX_DURATION_S;
  const skipped: Record<string, number> = {};
  const jobs: TraceJob[] = [];
  const convert = format === "alibaba-v2023" ? fromPod : fromInstance;
  parseCsvRecords(text).forEach((row, n) => {
    const job = convert(row, n + 2, maxDuration);
    if (typeof job === "string") skipped[job] = (skipped[job] ?? 0) + 1;
    else jobs.push(job);
  });
  // Trace time starts at the first submission.
  const t0 = jobs.reduce((m, j) => Math.min(m, j.submitS), Number.POSITIVE_INFINITY);
  for (const j of jobs) j.submitS -= t0;
  jobs.sort((a, b) => a.submitS - b.submitS);
  return { jobs, skipped };
}

const money = (micros: number) => (micros > 0 ? (micros / 1e6).toFixed(6).replace(/\.?0+$/, "") : "");

/** Writes jobs as a capa trace CSV (the header, then one row per job). */
export function formatTrace(jobs: readonly TraceJob[]): string {
  return stringify(
    jobs.map((j) => [
      j.id,
      j.submitS,
      j.durationS,
      j.gpus,
      j.gpuModels.join("|"),
      j.kind,
      j.replicas,
      j.regions.join("|"),
      money(j.maxPricePerGpuHour),
      j.dataRegion,
      j.priority,
      money(j.budget),
      j.interruptible ? 1 : 0,
    ]),
    { header: true, columns: [...TRACE_COLUMNS, ...TRACE_OPTIONAL_COLUMNS] },
  );
}
