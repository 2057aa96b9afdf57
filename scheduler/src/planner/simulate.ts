/** Simulate: a dry-run placement of a spec on the live cluster state; nothing is committed. */
import { type JobKind, type JobSpec, jobSpecViolations, throwIfViolations, ValidationError } from "@capa/domain";
import type { ClusterStateApi, Explanation, PlacementEngineApi } from "./engine.js";

export interface SimulateInput {
  spec: (Omit<JobSpec, "kind"> & { kind: JobKind | undefined }) | undefined;
  profile: string;
  seed: number;
}

export function simulate(
  engine: PlacementEngineApi,
  cluster: ClusterStateApi,
  input: SimulateInput,
  nowMs: number,
): Explanation {
  if (!input.spec) throw new ValidationError([{ field: "spec", message: "is required" }]);
  // The command does not matter for a dry run; accept a spec without one.
  const command = input.spec.template.command.length > 0 ? input.spec.template.command : ["true"];
  const spec = { ...input.spec, template: { ...input.spec.template, command } } as JobSpec;
  throwIfViolations(jobSpecViolations(spec));
  if (input.profile !== "" && !engine.profiles().some((p) => p.name === input.profile))
    throw new ValidationError([{ field: "profile", message: `unknown profile "${input.profile.slice(0, 64)}"` }]);
  const plan = engine.place(
    cluster,
    { jobId: "simulation", spec, replicas: Array.from({ length: spec.replicas }, (_, i) => i) },
    { nowMs, seed: input.seed || 1, ...(input.profile ? { profile: input.profile } : {}) },
  );
  return plan.explanation;
}
