import type { FieldViolation } from "./errors.js";
import { ValidationError } from "./errors.js";
import { JOB_KINDS, type JobSpec, RETRY_ON } from "./job.js";

/** Bounds on everything a tenant can send: nothing unbounded reaches the store. */
export const LIMITS = {
  maxNameLength: 128,
  maxReplicas: 1024,
  maxGpusPerReplica: 64,
  maxVramMib: 1 << 22,
  maxListItems: 64,
  maxShortString: 128,
  maxCommandArgs: 256,
  maxCommandArgLength: 8192,
  maxEnvEntries: 128,
  maxEnvValueLength: 8192,
  maxWorkingDirLength: 1024,
  maxKillGraceSeconds: 3600,
  maxExpectedDurationSeconds: 365 * 24 * 3600,
  maxRequestIdLength: 128,
  maxTenantLength: 64,
  maxPricePerGpuHour: 1_000 * 1_000_000,
  maxBudget: 100_000_000 * 1_000_000,
  maxPriority: 1000,
  maxRetries: 100,
  maxImageLength: 512,
  maxRetryBackoffSeconds: 3600,
  maxDataMounts: 16,
} as const;

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** An OCI image reference: [registry/]name[:tag][@digest]; no spaces, no leading "-" (it would read as a flag). */
const IMAGE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$/;
const TENANT_PATTERN = /^[a-z0-9][a-z0-9_-]*$/;

class Collector {
  readonly violations: FieldViolation[] = [];
  add(field: string, message: string): void {
    this.violations.push({ field, message });
  }
  intRange(field: string, value: number, min: number, max: number): void {
    if (!Number.isInteger(value) || value < min || value > max)
      this.add(field, `must be an integer in ${min}..${max}, got ${value}`);
  }
  string(field: string, value: string, max: number, pattern?: RegExp): void {
    if (value.length > max) this.add(field, `must be at most ${max} characters, got ${value.length}`);
    else if (pattern && value !== "" && !pattern.test(value))
      this.add(field, `has invalid characters: ${JSON.stringify(value.slice(0, 40))}`);
  }
  list(field: string, values: string[], maxItem: number, pattern?: RegExp): void {
    if (values.length > LIMITS.maxListItems) {
      this.add(field, `must have at most ${LIMITS.maxListItems} items, got ${values.length}`);
      return;
    }
    values.forEach((v, i) => {
      if (v === "") this.add(`${field}[${i}]`, "must not be empty");
      else this.string(`${field}[${i}]`, v, maxItem, pattern);
    });
  }
  map(field: string, entries: Record<string, string | number>, keyPattern: RegExp, maxValue: number): void {
    const keys = Object.keys(entries);
    if (keys.length > LIMITS.maxEnvEntries) {
      this.add(field, `must have at most ${LIMITS.maxEnvEntries} entries, got ${keys.length}`);
      return;
    }
    for (const key of keys) {
      if (!keyPattern.test(key) || key.length > LIMITS.maxShortString)
        this.add(`${field}[${key.slice(0, 40)}]`, "invalid key");
      const value = entries[key];
      if (typeof value === "string" && value.length > maxValue)
        this.add(`${field}[${key}]`, `value must be at most ${maxValue} characters`);
      if (typeof value === "number" && (!Number.isInteger(value) || value < 0 || value > 1_000_000_000))
        this.add(`${field}[${key}]`, "must be a non-negative integer");
    }
  }
}

const TOKEN = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;

/**
 * Validates a job spec; `prefix` is the path of the spec in the request (e.g. `spec`). Paths use the wire
 * (snake_case) names so a client can find the field it sent.
 */
export function jobSpecViolations(spec: JobSpec, prefix = "spec"): FieldViolation[] {
  const c = new Collector();
  const p = (f: string) => (prefix ? `${prefix}.${f}` : f);
  c.string(p("name"), spec.name, LIMITS.maxNameLength, NAME_PATTERN);
  if (!JOB_KINDS.includes(spec.kind)) c.add(p("kind"), `must be one of ${JOB_KINDS.join(", ")}`);
  c.intRange(p("replicas"), spec.replicas, 1, LIMITS.maxReplicas);
  c.intRange(p("gpus_per_replica"), spec.gpusPerReplica, 0, LIMITS.maxGpusPerReplica);
  c.list(p("gpu_models"), spec.gpuModels, LIMITS.maxShortString, TOKEN);
  c.intRange(p("min_vram_mib"), spec.minVramMib, 0, LIMITS.maxVramMib);
  c.list(p("regions"), spec.regions, LIMITS.maxShortString, TOKEN);
  c.list(p("exclude_regions"), spec.excludeRegions, LIMITS.maxShortString, TOKEN);
  c.string(p("data_region"), spec.dataRegion, LIMITS.maxShortString, TOKEN);
  c.string(p("residency"), spec.residency, LIMITS.maxShortString, TOKEN);
  c.intRange(p("max_price_micros_per_gpu_hour"), spec.maxPricePerGpuHour, 0, LIMITS.maxPricePerGpuHour);
  c.intRange(p("budget_micros"), spec.budget, 0, LIMITS.maxBudget);
  c.intRange(p("priority"), spec.priority, -LIMITS.maxPriority, LIMITS.maxPriority);
  c.intRange(p("expected_duration_seconds"), spec.expectedDurationSeconds, 0, LIMITS.maxExpectedDurationSeconds);
  c.map(p("demand_by_region"), spec.demandByRegion, TOKEN, 0);
  c.map(p("node_selector"), spec.nodeSelector, TOKEN, LIMITS.maxShortString);
  if (spec.deadlineUnixMs < 0 || !Number.isSafeInteger(spec.deadlineUnixMs))
    c.add(p("deadline_unix_ms"), "must be a non-negative integer");
  if (spec.failIfUnschedulableAfterSeconds !== undefined)
    c.intRange(
      p("fail_if_unschedulable_after_seconds"),
      spec.failIfUnschedulableAfterSeconds,
      0,
      LIMITS.maxExpectedDurationSeconds,
    );
  if (spec.kind === "inference" && spec.replicas > 0) {
    const demanded = Object.keys(spec.demandByRegion).length;
    if (demanded > spec.replicas)
      c.add(p("demand_by_region"), `names ${demanded} regions but only ${spec.replicas} replicas`);
  }
  if (spec.retries) {
    const r = spec.retries;
    c.intRange(p("retries.max"), r.max, 0, LIMITS.maxRetries);
    c.intRange(p("retries.backoff_seconds"), r.backoffSeconds, 0, LIMITS.maxRetryBackoffSeconds);
    if (r.on.length > RETRY_ON.length) c.add(p("retries.on"), `must have at most ${RETRY_ON.length} items`);
    else
      r.on.forEach((reason, i) => {
        if (!RETRY_ON.includes(reason)) c.add(`${p("retries.on")}[${i}]`, `must be one of ${RETRY_ON.join(", ")}`);
        else if (r.on.indexOf(reason) !== i) c.add(`${p("retries.on")}[${i}]`, `repeats ${reason}`);
      });
    if (r.max > 0 && r.on.length === 0)
      c.add(p("retries.on"), `must name at least one of ${RETRY_ON.join(", ")} when retries.max > 0`);
  }
  if (spec.elastic) {
    const e = spec.elastic;
    c.intRange(p("elastic.max_replicas"), e.max, 1, LIMITS.maxReplicas);
    c.intRange(p("elastic.min_replicas"), e.min, 1, Math.max(1, e.max));
    if (spec.kind !== "training") c.add(p("elastic"), "only training jobs are elastic (kind training)");
    else if (spec.replicas !== e.max)
      c.add(p("replicas"), `must equal elastic.max_replicas (${e.max}) for an elastic job, got ${spec.replicas}`);
  }
  const t = spec.template;
  const tp = (f: string) => p(`template.${f}`);
  if (t.command.length === 0 || t.command[0] === "") c.add(tp("command"), "must not be empty");
  else if (t.command.length > LIMITS.maxCommandArgs)
    c.add(tp("command"), `must have at most ${LIMITS.maxCommandArgs} arguments`);
  else
    t.command.forEach((arg, i) => {
      if (arg.length > LIMITS.maxCommandArgLength)
        c.add(`${tp("command")}[${i}]`, `must be at most ${LIMITS.maxCommandArgLength} characters`);
      if (arg.includes("\0")) c.add(`${tp("command")}[${i}]`, "must not contain NUL");
    });
  c.map(tp("env"), t.env, ENV_NAME_PATTERN, LIMITS.maxEnvValueLength);
  if ((t.secretEnvNames ?? []).length > LIMITS.maxEnvEntries)
    c.add(tp("secret_env_names"), `must have at most ${LIMITS.maxEnvEntries} names`);
  else
    (t.secretEnvNames ?? []).forEach((name, i) => {
      if (!Object.hasOwn(t.env, name))
        c.add(`${tp("secret_env_names")}[${i}]`, `names no env entry (${name.slice(0, 64)})`);
    });
  c.string(tp("working_dir"), t.workingDir, LIMITS.maxWorkingDirLength);
  if (t.image) c.string(tp("image"), t.image, LIMITS.maxImageLength, IMAGE_PATTERN);
  if (spec.checkpoint) {
    const ck = spec.checkpoint;
    c.string(p("checkpoint.dir"), ck.dir, LIMITS.maxWorkingDirLength);
    if (ck.dir.includes("\0")) c.add(p("checkpoint.dir"), "must not contain NUL");
    c.intRange(p("checkpoint.every_seconds"), ck.everySeconds, 0, LIMITS.maxExpectedDurationSeconds);
  }
  dataViolations(c, p("data"), spec.data ?? []);
  c.intRange(tp("kill_grace_seconds"), t.killGraceSeconds, 0, LIMITS.maxKillGraceSeconds);
  return c.violations;
}

/**
 * URI schemes agents can stage (agents/src/staging: one stager per scheme). A host path (absolute, no scheme) is
 * staged like `file://`. Anything else is refused here, at submit, rather than failing on an agent later.
 */
export const STAGED_SCHEMES: readonly string[] = ["file"];
const DATA_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]*$/;
const SCHEME_PATTERN = /^([A-Za-z][A-Za-z0-9+.-]*):/;

/** The scheme of a data source: "file" for a host path, else what precedes "://" (lower case). */
export function dataScheme(source: string): string {
  if (source.startsWith("/")) return "file";
  return SCHEME_PATTERN.exec(source)?.[1]?.toLowerCase() ?? "";
}

function dataViolations(c: Collector, field: string, data: { source: string; name: string; target: string }[]): void {
  if (data.length > LIMITS.maxDataMounts) {
    c.add(field, `must have at most ${LIMITS.maxDataMounts} items, got ${data.length}`);
    return;
  }
  const names = new Set<string>();
  data.forEach((d, i) => {
    const f = (x: string) => `${field}[${i}].${x}`;
    if (d.source === "") c.add(f("source"), "must not be empty");
    else if (d.source.length > LIMITS.maxWorkingDirLength)
      c.add(f("source"), `must be at most ${LIMITS.maxWorkingDirLength} characters`);
    else if (d.source.includes("\0")) c.add(f("source"), "must not contain NUL");
    else {
      const scheme = dataScheme(d.source);
      if (scheme === "") c.add(f("source"), "must be an absolute host path or a URI (file:///path)");
      else if (!STAGED_SCHEMES.includes(scheme))
        c.add(
          f("source"),
          `no stager for scheme ${scheme}:// (agents stage ${STAGED_SCHEMES.join(", ")} and host paths)`,
        );
    }
    if (d.name === "") c.add(f("name"), "must not be empty");
    else c.string(f("name"), d.name, 64, DATA_NAME_PATTERN);
    if (names.has(d.name)) c.add(f("name"), `repeats ${d.name}`);
    names.add(d.name);
    if (d.target !== "" && !d.target.startsWith("/"))
      c.add(f("target"), "must be an absolute path inside the container");
    c.string(f("target"), d.target, LIMITS.maxWorkingDirLength);
  });
}

export function requestIdViolations(requestId: string, field = "request_id"): FieldViolation[] {
  const c = new Collector();
  c.string(field, requestId, LIMITS.maxRequestIdLength, TOKEN);
  return c.violations;
}

export function tenantViolations(tenant: string, field = "tenant"): FieldViolation[] {
  const c = new Collector();
  if (tenant === "") c.add(field, "must not be empty");
  else c.string(field, tenant, LIMITS.maxTenantLength, TENANT_PATTERN);
  return c.violations;
}

export function throwIfViolations(violations: FieldViolation[]): void {
  if (violations.length > 0) throw new ValidationError(violations);
}
