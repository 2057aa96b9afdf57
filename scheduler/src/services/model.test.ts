import type { ValidationError } from "@capa/domain";
import { describe, expect, it } from "vitest";
import { normalizeServiceSpec, replicaJobSpec, type ServiceSpec, templateDigest } from "./model.js";

function spec(overrides: Partial<ServiceSpec> = {}): ServiceSpec {
  return {
    name: "echo",
    template: { command: ["node", "model.js"], env: {}, workingDir: "", killGraceSeconds: 2 },
    readiness: { httpPath: "/healthz", periodMs: 0, failureThreshold: 0 },
    regions: [{ region: "eu-west", minReplicas: 0, maxReplicas: 0, demand: 10 }],
    minReplicas: 1,
    maxReplicas: 3,
    target: { requestsPerSecondPerReplica: 0, p95LatencyMs: 0, scaleUpWindowMs: 0, scaleDownWindowMs: 0 },
    gpusPerReplica: 1,
    gpuModels: [],
    maxPricePerGpuHour: 0,
    budget: 0,
    modelVersion: "v1",
    rollout: { canaryPercent: 0, steps: [], pauseMs: 0, maxErrorRate: 0, minRequests: 0, readyTimeoutMs: 0 },
    drift: { metric: "", threshold: 0, trigger: "" },
    ...overrides,
  };
}

function violations(s: ServiceSpec, tenant = "acme"): string[] {
  try {
    normalizeServiceSpec(tenant, s);
    return [];
  } catch (err) {
    return (err as ValidationError).violations.map((v) => v.field);
  }
}

describe("normalizeServiceSpec", () => {
  it("fills region bounds and probe/window defaults from the service", () => {
    const s = normalizeServiceSpec("acme", spec());
    expect(s.regions[0]).toMatchObject({ minReplicas: 1, maxReplicas: 3 });
    expect(s.readiness).toEqual({ httpPath: "/healthz", periodMs: 1000, failureThreshold: 2 });
    expect(s.target.scaleUpWindowMs).toBe(5000);
    expect(s.target.scaleDownWindowMs).toBe(30000);
  });

  it.each([
    [{ name: "Echo" }, "spec.name"],
    [{ name: "-echo" }, "spec.name"],
    [{ regions: [] }, "spec.regions"],
    [{ minReplicas: 4 }, "spec.min_replicas"],
    [{ maxReplicas: 65 }, "spec.max_replicas"],
    [{ readiness: { httpPath: "healthz", periodMs: 0, failureThreshold: 0 } }, "spec.readiness.http_path"],
    [{ readiness: { httpPath: "/", periodMs: 50, failureThreshold: 0 } }, "spec.readiness.period_ms"],
    [{ template: { command: [], env: {}, workingDir: "", killGraceSeconds: 0 } }, "spec.template.command"],
    [
      { template: { command: ["x"], env: { CAPA_SERVICE: "x" }, workingDir: "", killGraceSeconds: 0 } },
      "spec.template.env.CAPA_SERVICE",
    ],
    [{ gpusPerReplica: -1 }, "spec.gpus_per_replica"],
    [{ drift: { metric: "Drift Score", threshold: 0.3, trigger: "" } }, "spec.drift.metric"],
    [
      {
        target: { requestsPerSecondPerReplica: -1, p95LatencyMs: 0, scaleUpWindowMs: 0, scaleDownWindowMs: 0 },
      },
      "spec.target.requests_per_second_per_replica",
    ],
  ] as [Partial<ServiceSpec>, string][])("refuses %j at %s", (overrides, field) => {
    expect(violations(spec(overrides))).toContain(field);
  });

  it("refuses a region named twice and a bad tenant", () => {
    const r = { region: "eu-west", minReplicas: 0, maxReplicas: 0, demand: 0 };
    expect(violations(spec({ regions: [r, { ...r }] }))).toContain("spec.regions[1].region");
    expect(violations(spec(), "")).toContain("tenant");
  });
});

describe("replicaJobSpec", () => {
  it("is a one-replica inference job pinned to its region, carrying the service markers", () => {
    const s = normalizeServiceSpec("acme", spec());
    const job = replicaJobSpec(s, "eu-west", 3);
    expect(job).toMatchObject({
      kind: "inference",
      replicas: 1,
      regions: ["eu-west"],
      demandByRegion: { "eu-west": 10 },
    });
    expect(job.template.env).toMatchObject({
      CAPA_SERVICE: "echo",
      CAPA_SERVICE_REVISION: "3",
      CAPA_MODEL_VERSION: "v1",
      CAPA_READINESS_PATH: "/healthz",
      CAPA_READINESS_PERIOD_MS: "1000",
      CAPA_READINESS_FAILURES: "2",
    });
  });

  it("a new revision is what the replicas run, not their count", () => {
    const a = normalizeServiceSpec("acme", spec());
    expect(templateDigest({ ...a, maxReplicas: 9 })).toBe(templateDigest(a));
    expect(templateDigest({ ...a, modelVersion: "v2" })).not.toBe(templateDigest(a));
  });
});
