import { describe, expect, it } from "vitest";
import { ValidationError } from "./errors.js";
import { defaultJobSpec, type JobSpec } from "./job.js";
import { jobSpecViolations, requestIdViolations, tenantViolations, throwIfViolations } from "./validation.js";

const valid = (overrides: Partial<JobSpec> = {}): JobSpec =>
  defaultJobSpec({ template: { command: ["echo", "hi"], env: {}, workingDir: "", killGraceSeconds: 5 }, ...overrides });

describe("jobSpecViolations", () => {
  it("accepts a plain spec", () => {
    expect(jobSpecViolations(valid())).toEqual([]);
  });

  it.each<[string, Partial<JobSpec>, string]>([
    ["negative GPUs", { gpusPerReplica: -1 }, "spec.gpus_per_replica"],
    ["too many GPUs", { gpusPerReplica: 65 }, "spec.gpus_per_replica"],
    ["zero replicas", { replicas: 0 }, "spec.replicas"],
    ["fractional replicas", { replicas: 1.5 }, "spec.replicas"],
    ["unknown kind", { kind: "mining" as JobSpec["kind"] }, "spec.kind"],
    ["oversize name", { name: "x".repeat(129) }, "spec.name"],
    ["bad name characters", { name: "a b" }, "spec.name"],
    ["negative price", { maxPricePerGpuHour: -1 }, "spec.max_price_micros_per_gpu_hour"],
    ["empty model", { gpuModels: [""] }, "spec.gpu_models[0]"],
    ["model with dots and spaces", { gpuModels: ["ok", "a b"] }, "spec.gpu_models[1]"],
    [
      "more demanded regions than replicas",
      { kind: "inference", demandByRegion: { a: 1, b: 2 } },
      "spec.demand_by_region",
    ],
  ])("%s → %s", (_, overrides, field) => {
    expect(jobSpecViolations(valid(overrides)).map((v) => v.field)).toContain(field);
  });

  it.each<[string, JobSpec["template"], string]>([
    ["empty command", { command: [], env: {}, workingDir: "", killGraceSeconds: 0 }, "spec.template.command"],
    ["empty program", { command: [""], env: {}, workingDir: "", killGraceSeconds: 0 }, "spec.template.command"],
    [
      "oversize argument",
      { command: ["echo", "x".repeat(9000)], env: {}, workingDir: "", killGraceSeconds: 0 },
      "spec.template.command[1]",
    ],
    [
      "bad env name",
      { command: ["x"], env: { "1A": "v" }, workingDir: "", killGraceSeconds: 0 },
      "spec.template.env[1A]",
    ],
    [
      "grace too long",
      { command: ["x"], env: {}, workingDir: "", killGraceSeconds: 99_999 },
      "spec.template.kill_grace_seconds",
    ],
  ])("%s → %s", (_, template, field) => {
    expect(jobSpecViolations(valid({ template })).map((v) => v.field)).toContain(field);
  });

  it("throws one ValidationError listing every violation", () => {
    const violations = jobSpecViolations(valid({ replicas: 0, gpusPerReplica: -2 }));
    expect(() => throwIfViolations(violations)).toThrow(ValidationError);
    expect(() => throwIfViolations(violations)).toThrow(/spec\.replicas.*spec\.gpus_per_replica/);
  });
});

describe("request id and tenant", () => {
  it.each([
    ["ok-1", 0],
    ["", 0],
    ["x".repeat(129), 1],
    ["has space", 1],
  ])("request id %j → %d violations", (id, n) => {
    expect(requestIdViolations(id)).toHaveLength(n);
  });

  it.each([
    ["acme", 0],
    ["", 1],
    ["Acme", 1],
    ["a".repeat(65), 1],
  ])("tenant %j → %d violations", (tenant, n) => {
    expect(tenantViolations(tenant)).toHaveLength(n);
  });
});
