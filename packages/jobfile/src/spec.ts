/**
 * A validated Job document ⇄ the domain JobSpec. The file speaks the CLI's language (GiB, dollars, durations,
 * camelCase names as in the flags); the domain speaks micros, MiB and seconds. After conversion the domain's
 * own validator runs too, and its wire-named violations (`spec.gpus_per_replica`) are reported under the
 * file's names (`spec.resources.gpus`), so a file is refused here exactly as the scheduler would refuse it.
 */
import {
  DEFAULT_KILL_GRACE_SECONDS,
  defaultJobSpec,
  formatUsd,
  type JobSpec,
  jobSpecViolations,
  parseUsd,
  type RetryOn,
} from "@capa/domain";
import { formatDuration, parseDuration } from "./duration.js";
import { JobFileError, type JobFileIssue } from "./parse.js";
import { API_VERSION, type CapaDocument, type JobDocument } from "./schema.js";

const MIB_PER_GIB = 1024;
/** Defaults of `retries:` (and of the --retries flag). */
export const DEFAULT_RETRY_BACKOFF = "10s";
export const DEFAULT_RETRY_ON: readonly RetryOn[] = ["failed"];

const list = (value: string | string[] | undefined): string[] =>
  value === undefined ? [] : typeof value === "string" ? [value] : [...value];

/**
 * Reads one `secrets:` reference on the submitting machine: `{env: NAME}` or `{file: path}`; throws (with a
 * message naming what is missing) when it cannot. Absent = the document must have no secrets.
 */
export type SecretResolver = (ref: { env: string } | { file: string }) => string;

export function jobSpecFromDocument(doc: CapaDocument, source = "job file", resolveSecret?: SecretResolver): JobSpec {
  if (doc.kind !== "Job")
    throw new JobFileError(source, [
      { path: "kind", message: `is ${doc.kind}, not Job: apply it with capa apply -f (submit takes a Job)` },
    ]);
  const s = doc.spec;
  const secrets = secretEnv(s.secrets ?? {}, source, resolveSecret);
  const r = s.resources ?? {};
  const spec = defaultJobSpec({
    name: doc.metadata?.name ?? "",
    kind: s.kind ?? "batch",
    replicas: s.replicas ?? s.elastic?.max ?? 1,
    gpusPerReplica: r.gpus ?? 1,
    gpuModels: list(r.gpuModels),
    minVramMib: r.minVramGiB === undefined ? 0 : Math.round(r.minVramGiB * MIB_PER_GIB),
    regions: list(s.regions),
    excludeRegions: list(s.excludeRegions),
    dataRegion: s.dataRegion ?? "",
    residency: s.residency ?? "",
    maxPricePerGpuHour: s.maxPrice === undefined ? 0 : parseUsd(s.maxPrice),
    budget: s.budget === undefined ? 0 : parseUsd(s.budget),
    priority: s.priority ?? 0,
    interruptible: s.interruptible ?? false,
    expectedDurationSeconds: s.duration === undefined ? 0 : parseDuration(s.duration),
    demandByRegion: { ...(s.demand ?? {}) },
    allowFabricSpanning: s.allowFabricSpanning ?? false,
    nodeSelector: { ...(s.selector ?? {}) },
    template: {
      command: [...s.command],
      env: { ...(s.env ?? {}), ...secrets },
      workingDir: s.workdir ?? "",
      ...(s.image && { image: s.image }),
      killGraceSeconds: s.killGrace === undefined ? DEFAULT_KILL_GRACE_SECONDS : parseDuration(s.killGrace),
      ...(Object.keys(secrets).length > 0 && { secretEnvNames: Object.keys(secrets) }),
    },
    ...(s.checkpoint && {
      checkpoint: {
        dir: s.checkpoint.dir ?? "",
        everySeconds: s.checkpoint.every === undefined ? 0 : parseDuration(s.checkpoint.every),
      },
    }),
    ...(s.data?.length && {
      data: s.data.map((d) => ({ name: d.name, source: d.source, target: d.target ?? "" })),
    }),
    ...(s.retries && {
      retries: {
        max: s.retries.max,
        backoffSeconds: parseDuration(s.retries.backoff ?? DEFAULT_RETRY_BACKOFF),
        on: [...(s.retries.on ?? DEFAULT_RETRY_ON)],
      },
    }),
    ...(s.elastic && { elastic: { min: s.elastic.min, max: s.elastic.max } }),
  });
  const issues = specIssues(spec);
  if (issues.length > 0) throw new JobFileError(source, issues);
  return spec;
}

function secretEnv(
  refs: NonNullable<JobDocument["spec"]["secrets"]>,
  source: string,
  resolve: SecretResolver | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  const issues: JobFileIssue[] = [];
  for (const [name, ref] of Object.entries(refs)) {
    if (!resolve) {
      issues.push({ path: `spec.secrets.${name}`, message: "cannot be read here (no secret resolver)" });
      continue;
    }
    try {
      out[name] = resolve(ref);
    } catch (err) {
      issues.push({ path: `spec.secrets.${name}`, message: (err as Error).message });
    }
  }
  if (issues.length > 0) throw new JobFileError(source, issues);
  return out;
}

/**
 * The document that jobSpecFromDocument turns back into `spec` (defaults left out). Secret values are never
 * written back: secret entries are left out of `env` (their source, an env var or a file, is not on the spec).
 */
export function jobDocumentFromSpec(spec: JobSpec): JobDocument {
  const t = spec.template;
  const resources: NonNullable<JobDocument["spec"]["resources"]> = {};
  if (spec.gpusPerReplica !== 1) resources.gpus = spec.gpusPerReplica;
  if (spec.gpuModels.length > 0) resources.gpuModels = [...spec.gpuModels];
  if (spec.minVramMib > 0) resources.minVramGiB = spec.minVramMib / MIB_PER_GIB;
  const out: JobDocument["spec"] = {
    ...(spec.kind !== "batch" && { kind: spec.kind }),
    // An elastic job's replicas is its max (the default there).
    ...(spec.replicas !== (spec.elastic?.max ?? 1) && { replicas: spec.replicas }),
    ...(spec.elastic && { elastic: { min: spec.elastic.min, max: spec.elastic.max } }),
    ...(Object.keys(resources).length > 0 && { resources }),
    ...(spec.regions.length > 0 && { regions: [...spec.regions] }),
    ...(spec.excludeRegions.length > 0 && { excludeRegions: [...spec.excludeRegions] }),
    ...(spec.dataRegion && { dataRegion: spec.dataRegion }),
    ...(spec.residency && { residency: spec.residency }),
    ...(spec.maxPricePerGpuHour > 0 && { maxPrice: formatUsd(spec.maxPricePerGpuHour) }),
    ...(spec.budget > 0 && { budget: formatUsd(spec.budget) }),
    ...(spec.priority !== 0 && { priority: spec.priority }),
    ...(spec.interruptible && { interruptible: true }),
    ...(spec.expectedDurationSeconds > 0 && { duration: formatDuration(spec.expectedDurationSeconds) }),
    ...(Object.keys(spec.demandByRegion).length > 0 && { demand: { ...spec.demandByRegion } }),
    ...(Object.keys(spec.nodeSelector).length > 0 && { selector: { ...spec.nodeSelector } }),
    ...(spec.allowFabricSpanning && { allowFabricSpanning: true }),
    command: [...t.command],
    ...(Object.keys(publicEnv(t)).length > 0 && { env: publicEnv(t) }),
    ...(t.workingDir && { workdir: t.workingDir }),
    ...(t.image && { image: t.image }),
    ...(t.killGraceSeconds !== DEFAULT_KILL_GRACE_SECONDS && { killGrace: formatDuration(t.killGraceSeconds) }),
    ...(spec.retries && {
      retries: {
        max: spec.retries.max,
        backoff: formatDuration(spec.retries.backoffSeconds),
        ...(spec.retries.on.length > 0 && { on: [...spec.retries.on] }),
      },
    }),
    ...(spec.checkpoint && {
      checkpoint: {
        ...(spec.checkpoint.dir && { dir: spec.checkpoint.dir }),
        ...(spec.checkpoint.everySeconds > 0 && { every: formatDuration(spec.checkpoint.everySeconds) }),
      },
    }),
    ...(spec.data?.length && {
      data: spec.data.map((d) => ({ name: d.name, source: d.source, ...(d.target && { target: d.target }) })),
    }),
  };
  return {
    apiVersion: API_VERSION,
    kind: "Job",
    ...(spec.name && { metadata: { name: spec.name } }),
    spec: out,
  };
}

function publicEnv(t: JobSpec["template"]): Record<string, string> {
  const secret = new Set(t.secretEnvNames ?? []);
  return Object.fromEntries(Object.entries(t.env).filter(([k]) => !secret.has(k)));
}

/** Wire field (as the domain validator names it, without the `spec.` prefix) → the job file's path. */
export const FILE_PATH_OF_WIRE_FIELD: Readonly<Record<string, string>> = {
  name: "metadata.name",
  kind: "spec.kind",
  replicas: "spec.replicas",
  gpus_per_replica: "spec.resources.gpus",
  gpu_models: "spec.resources.gpuModels",
  min_vram_mib: "spec.resources.minVramGiB",
  regions: "spec.regions",
  exclude_regions: "spec.excludeRegions",
  data_region: "spec.dataRegion",
  residency: "spec.residency",
  max_price_micros_per_gpu_hour: "spec.maxPrice",
  budget_micros: "spec.budget",
  priority: "spec.priority",
  expected_duration_seconds: "spec.duration",
  demand_by_region: "spec.demand",
  node_selector: "spec.selector",
  deadline_unix_ms: "spec.deadline",
  "template.command": "spec.command",
  "template.env": "spec.env",
  "template.working_dir": "spec.workdir",
  "template.image": "spec.image",
  "template.kill_grace_seconds": "spec.killGrace",
  "checkpoint.dir": "spec.checkpoint.dir",
  "checkpoint.every_seconds": "spec.checkpoint.every",
  data: "spec.data",
  "template.secret_env_names": "spec.secrets",
  "retries.max": "spec.retries.max",
  "retries.backoff_seconds": "spec.retries.backoff",
  "retries.on": "spec.retries.on",
  elastic: "spec.elastic",
  "elastic.min_replicas": "spec.elastic.min",
  "elastic.max_replicas": "spec.elastic.max",
};

/** The domain validator's verdict on `spec`, in file paths. */
export function specIssues(spec: JobSpec): JobFileIssue[] {
  return jobSpecViolations(spec, "").map((v) => ({ path: filePathOfWireField(v.field), message: v.message }));
}

/** `gpu_models[2]` → `spec.resources.gpuModels[2]`; the longest known prefix wins. */
export function filePathOfWireField(field: string): string {
  let best = "";
  for (const wire of Object.keys(FILE_PATH_OF_WIRE_FIELD)) {
    if ((field === wire || field.startsWith(`${wire}[`) || field.startsWith(`${wire}.`)) && wire.length > best.length)
      best = wire;
  }
  return best ? `${FILE_PATH_OF_WIRE_FIELD[best]}${field.slice(best.length)}` : `spec.${field}`;
}
