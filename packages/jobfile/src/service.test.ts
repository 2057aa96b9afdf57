import { describe, expect, it } from "vitest";
import { JobFileError, parseDocument } from "./parse.js";
import { durationMs, serviceSpecJsonFromDocument } from "./service.js";

const CHAT = `
apiVersion: capa/v1
kind: Service
metadata:
  name: chat
spec:
  command: [python, serve.py]
  env: {MODEL: llama-8b}
  modelVersion: llama-8b-v3
  resources: {gpus: 1, gpuModels: [H100-80GB]}
  maxPrice: 2.49
  budget: "$500"
  readiness: {httpPath: /healthz, period: 500ms, failureThreshold: 3}
  replicas: {min: 1, max: 4}
  regions:
    - {region: eu-west, min: 1, max: 6, demand: 50}
    - {region: us-east}
  target: {requestsPerSecond: 5, scaleUpWindow: 5s, scaleDownWindow: 1m}
  rollout: {canary: 10, steps: [50, 100], pause: 30s, maxErrorRate: 0.02, minRequests: 50, readyTimeout: 2m}
  drift: {metric: drift_score, threshold: 0.5, schedule: retrain-chat}
`;

function issuesOf(text: string): string[] {
  try {
    parseDocument(text, "svc.yaml");
  } catch (err) {
    if (err instanceof JobFileError) return err.issues.map((i) => `${i.path}: ${i.message}`);
    throw err;
  }
  return [];
}

const service = (spec: string) =>
  `apiVersion: capa/v1\nkind: Service\nmetadata: {name: s}\nspec:\n  command: [serve]\n  regions: [{region: eu-west}]\n${spec}`;

describe("kind: Service → ServiceSpec (proto JSON)", () => {
  it("maps every field onto the ServiceSpec message", () => {
    const doc = parseDocument(CHAT);
    if (doc.kind !== "Service") throw new Error("expected a Service");
    expect(serviceSpecJsonFromDocument(doc)).toEqual({
      name: "chat",
      template: {
        command: ["python", "serve.py"],
        env: { MODEL: "llama-8b" },
        workingDir: "",
        killGraceSeconds: 0,
        image: "",
      },
      readiness: { httpPath: "/healthz", periodMs: 500, failureThreshold: 3 },
      regions: [
        { region: "eu-west", minReplicas: 1, maxReplicas: 6, demand: 50 },
        { region: "us-east", minReplicas: 0, maxReplicas: 0, demand: 0 },
      ],
      minReplicas: 1,
      maxReplicas: 4,
      target: { requestsPerSecondPerReplica: 5, p95LatencyMs: 0, scaleUpWindowMs: 5_000, scaleDownWindowMs: 60_000 },
      gpusPerReplica: 1,
      gpuModels: ["H100-80GB"],
      maxPriceMicrosPerGpuHour: 2_490_000,
      budgetMicros: 500_000_000,
      modelVersion: "llama-8b-v3",
      rollout: {
        canaryPercent: 10,
        steps: [50, 100],
        pauseMs: 30_000,
        maxErrorRate: 0.02,
        minRequests: 50,
        readyTimeoutMs: 120_000,
      },
      drift: { metric: "drift_score", threshold: 0.5, trigger: "retrain-chat" },
    });
  });

  it("reads durations in milliseconds or h/m/s", () => {
    expect([durationMs("500ms"), durationMs("2s"), durationMs("1m30s"), durationMs(undefined)]).toEqual([
      500,
      2_000,
      90_000,
      undefined,
    ]);
  });

  it.each([
    ["  readiness: {period: 0.5s}\n", "spec.readiness.period: must be a duration such as 500ms"],
    ["  replicas: {max: 0}\n", "spec.replicas.max: must be an integer in 1..64"],
    ["  rollout: {canary: 150}\n", "spec.rollout.canary: must be an integer in 0..100"],
    ["  target: {rps: 5}\n", "spec.target.rps: unknown field"],
    ["  drift: {metric: drift_score}\n", "spec.drift.threshold: is required"],
    ["  maxPrice: ten\n", "spec.maxPrice: must be a dollar amount"],
  ])("%j → %s", (line, expected) => {
    const issues = issuesOf(service(line));
    expect(issues.join("\n")).toContain(expected);
    expect(issues).toHaveLength(1);
  });

  it("requires a command and at least one region", () => {
    expect(issuesOf("apiVersion: capa/v1\nkind: Service\nmetadata: {name: s}\nspec: {regions: []}\n")).toEqual([
      "spec.command: is required",
      "spec.regions: must name at least one region",
    ]);
  });
});
