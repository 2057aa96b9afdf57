/**
 * Jobs no agent could ever hold. The placement engine calls a plan "unplaceable" when the job would not fit on
 * the fleet even if nothing else ran (too many GPUs for any agent without fabric spanning, a region, model or
 * label no agent has, a price cap under every offer). Such a job's reason starts with "UNSCHEDULABLE:" so
 * tenants and tools can tell it from one waiting for busy GPUs; with `failIfUnschedulableAfterSeconds` it fails
 * once it has been so that long after submission (agents may join meanwhile: then it places). Pure.
 */
import type { Job } from "@capa/domain";
import { NEEDS_PLACEMENT, settle } from "./settle.js";

export const UNSCHEDULABLE_PREFIX = "UNSCHEDULABLE:";

export interface UnschedulableVerdict {
  reason: string;
  /** The job as it should be written: failed, or `undefined` to keep it waiting with `reason`. */
  failed: Job | undefined;
}

/**
 * The verdict for a job whose plan came back unplaceable, or `undefined` when the rule does not apply (some of
 * its tasks were placed once: the rest waits for those GPUs, not for a different fleet).
 */
export function unschedulableVerdict(
  job: Job,
  why: readonly string[],
  relaxation: string,
  nowMs: number,
): UnschedulableVerdict | undefined {
  if (!job.tasks.every((t) => NEEDS_PLACEMENT.has(t.state))) return undefined;
  const detail = why.filter(Boolean).join("; ") || "no agent passes the job's constraints";
  const hint = relaxation ? ` (it would fit with: ${relaxation})` : "";
  const reason = `${UNSCHEDULABLE_PREFIX} no agent could ever hold this job: ${detail}${hint}`.slice(0, 1024);
  const after = job.spec.failIfUnschedulableAfterSeconds ?? 0;
  if (after <= 0 || nowMs - job.createdAtMs < after * 1000) return { reason, failed: undefined };
  const failed = structuredClone(job);
  for (const t of failed.tasks) {
    t.state = "failed";
    t.exitCode = -1;
    t.message = "unschedulable";
    t.finishedAtMs = nowMs;
  }
  settle(failed, nowMs);
  failed.reason = `${reason}; failed after ${after}s (fail_if_unschedulable_after_seconds)`.slice(0, 1024);
  return { reason, failed };
}
