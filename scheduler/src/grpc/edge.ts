/**
 * What clients send, made whole at the edge before any domain code sees it: the server-side defaults documented
 * in the protos (a proto3 zero value means "default" where the proto says so, so a client in any language may
 * send only gpus_per_replica and a command), and GPU model names normalised by ONE function for SubmitJob,
 * Quote, Simulate and ListOffers (`parseGpuModelQuery` in @capa/domain). The submit hot path past this point
 * sees only canonical specs.
 */
import * as pb from "@capa/api";
import { jobSpecFromPb } from "@capa/bus";
import {
  DEFAULT_KILL_GRACE_SECONDS,
  type JobKind,
  type JobSpec,
  LIMITS,
  parseGpuModelQuery,
  resolveGpuModels,
  throwIfViolations,
} from "@capa/domain";

/** The tenant of a request that names none (until credentials name it). */
export const DEFAULT_TENANT = "default";

export type SpecInput = Omit<JobSpec, "kind"> & { kind: JobKind | undefined };

/** The GPU models capa knows right now: those the fleet advertises (the catalog's are added by the parser). */
export type KnownGpuModels = () => Iterable<string>;

/** GPU models advertised by the agents of a cluster state (anything with `agents()` of views with GPUs). */
export function advertisedGpuModels(cluster: { agents(): Iterable<{ gpus: readonly { model: string }[] }> }) {
  return (): string[] => {
    const models = new Set<string>();
    for (const a of cluster.agents()) for (const g of a.gpus) models.add(g.model);
    return [...models];
  };
}

/**
 * A wire spec with the defaults applied (kind UNSPECIFIED → batch, replicas 0 → 1, or elastic.max_replicas for
 * an elastic job, kill_grace_seconds 0 → 10)
 * and its GPU models canonical. An unknown enum value stays `undefined` so validation names the field; an
 * unknown GPU model is INVALID_ARGUMENT at `<field>.gpu_models[i]` listing the known ones.
 */
export function specFromWire(
  spec: pb.JobSpec | undefined,
  known: KnownGpuModels,
  field = "spec",
): SpecInput | undefined {
  if (!spec) return undefined;
  const s = jobSpecFromPb(spec);
  const kind = spec.kind === pb.JobKind.JOB_KIND_UNSPECIFIED ? "batch" : s.kind;
  // Empty entries or too many: left as sent, validation names them.
  let gpuModels = s.gpuModels;
  if (!gpuModels.includes("") && gpuModels.length <= LIMITS.maxListItems) {
    const resolved = resolveGpuModels(gpuModels, known(), `${field}.gpu_models`);
    throwIfViolations(resolved.violations);
    gpuModels = resolved.models;
  }
  return {
    ...s,
    kind,
    replicas: s.replicas === 0 ? (s.elastic?.max ?? 1) || 1 : s.replicas,
    gpuModels,
    template: {
      ...s.template,
      killGraceSeconds: s.template.killGraceSeconds === 0 ? DEFAULT_KILL_GRACE_SECONDS : s.template.killGraceSeconds,
    },
  };
}

/** ListOffers' model filter: "" = any; a family alone stays a family (the order book matches every size). */
export function offerModelFilter(gpuModel: string, known: KnownGpuModels, field = "gpu_model"): string {
  if (gpuModel.trim() === "") return "";
  const q = parseGpuModelQuery(gpuModel, known());
  if (!q.ok) throwIfViolations([{ field, message: q.message }]);
  return q.ok ? (q.model ?? q.family) : "";
}

export function tenantOrDefault(tenant: string): string {
  return tenant === "" ? DEFAULT_TENANT : tenant;
}
