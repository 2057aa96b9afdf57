/**
 * Job mixes drawn from the Alibaba traces: GPU counts, durations and best-effort QoS (→ interruptible) from the
 * PAI 2023 pod list; inference service sizes from the 2025 DLRM trace. The traces carry no placement
 * constraints, so those are synthetic, in stated proportions: 25% need ≥ 40 GB, 15% name GPU models,
 * 10% require EU residency, 20% allow two regions, 30% cap the price, 40% read data from a region.
 */
import { defaultJobSpec, type JobSpec } from "@capa/domain";
import type { PlacementRequest } from "@capa/placement";
import type { DataSet, PodRecord } from "./data.js";

export interface Workload {
  regions: string[];
  models: string[];
  rng: () => number;
}

function pick<T>(w: Workload, list: readonly T[]): T {
  return list[Math.floor(w.rng() * list.length)]!;
}

function constraints(w: Workload, spec: Partial<JobSpec>): Partial<JobSpec> {
  const r = () => w.rng();
  if (r() < 0.25) spec.minVramMib = 40 * 1024;
  if (r() < 0.15) spec.gpuModels = [pick(w, w.models), pick(w, w.models)];
  if (r() < 0.1) spec.residency = "eu";
  else if (r() < 0.2) spec.regions = [pick(w, w.regions), pick(w, w.regions)];
  if (r() < 0.3) spec.maxPricePerGpuHour = 1_500_000 + Math.floor(r() * 40) * 100_000;
  if (r() < 0.4) spec.dataRegion = pick(w, w.regions);
  return spec;
}

function request(jobId: string, spec: JobSpec): PlacementRequest {
  return { jobId, spec, replicas: Array.from({ length: spec.replicas }, (_, i) => i) };
}

/** A batch job shaped like one trace pod (whole GPUs; CPU-only pods excluded by the caller if wanted). */
export function podJob(w: Workload, jobId: string, pod: PodRecord): PlacementRequest {
  const spec = defaultJobSpec(
    constraints(w, {
      name: jobId,
      kind: "batch",
      gpusPerReplica: pod.gpus,
      interruptible: pod.bestEffort,
      expectedDurationSeconds: Math.max(60, pod.durationSeconds),
    }),
  );
  return request(jobId, spec);
}

export function singleGpuPods(data: DataSet): PodRecord[] {
  return data.pods.filter((p) => p.gpus === 1);
}

export function gpuPods(data: DataSet): PodRecord[] {
  return data.pods.filter((p) => p.gpus > 0);
}

/** A training gang: `replicas` × `gpus`, one region and fabric domain, half on 80 GB parts and half on ≥ 24 GB, for the duration of an 8-GPU trace pod. */
export function gangJob(w: Workload, jobId: string, data: DataSet, replicas: number, gpus: number): PlacementRequest {
  const big = data.pods.filter((p) => p.gpus >= 8);
  const pod = big.length > 0 ? pick(w, big) : { durationSeconds: 36_000, gpus: 8, bestEffort: false };
  const spec = defaultJobSpec({
    name: jobId,
    kind: "training",
    replicas,
    gpusPerReplica: gpus,
    minVramMib: (w.rng() < 0.5 ? 80 : 24) * 1024,
    expectedDurationSeconds: Math.max(600, pod.durationSeconds),
    dataRegion: w.rng() < 0.5 ? pick(w, w.regions) : "",
  });
  return request(jobId, spec);
}

/** An inference service: size from the DLRM trace (scaled down), demand over two or three regions. */
export function inferenceJob(w: Workload, jobId: string, data: DataSet, scale: number): PlacementRequest {
  const size = Math.max(1, Math.min(8, Math.round(pick(w, data.serviceSizes) / scale)));
  const demandByRegion: Record<string, number> = {};
  const n = 2 + Math.floor(w.rng() * 2);
  for (let i = 0; i < n; i++) demandByRegion[pick(w, w.regions)] = 1 + Math.floor(w.rng() * 9);
  const spec = defaultJobSpec({
    name: jobId,
    kind: "inference",
    replicas: size,
    gpusPerReplica: 1,
    minVramMib: 16 * 1024,
    demandByRegion,
    expectedDurationSeconds: 24 * 3600,
  });
  return request(jobId, spec);
}
