/**
 * Every rejection the engine records carries one of these names (kebab-case, stable: the CLI's `explain`
 * and dashboards count them). Add a reason here when you add a filter.
 */
export const REASON = {
  /** Not enough healthy, unallocated GPUs of the model on the agent. */
  insufficientGpus: "insufficient-gpus",
  /** The agent's GPU model is not in the job's accepted list. */
  gpuModelNotAccepted: "gpu-model-not-accepted",
  /** The agent's GPUs have less memory than the job's minimum. */
  insufficientVram: "insufficient-vram",
  /** The job lists allowed regions and the agent's region is not one of them. */
  regionNotAllowed: "region-not-allowed",
  /** The job excludes the agent's region. */
  regionExcluded: "region-excluded",
  /** The job requires a residency zone (e.g. "eu") the agent is not in. */
  residencyMismatch: "residency-mismatch",
  /** The agent's price for the model exceeds the job's maximum per GPU-hour. */
  overMaxPrice: "over-max-price",
  /** The agent has not been heard from within the advert age limit. */
  staleAdvert: "stale-advert",
  /** The operator is draining the agent. */
  agentDraining: "agent-draining",
  /** The agent cannot run the job's tasks the way they need (an image needs the container driver). */
  driverMissing: "driver-missing",
  /** The agent lacks a label the job's node selector requires. */
  labelMismatch: "label-mismatch",
  /** No single fabric domain can host the whole gang and the job does not allow spanning. */
  fabricDomainTooSmall: "fabric-domain-too-small",
  /** No region can host the whole gang (gangs never span regions). */
  gangDoesNotFitRegion: "gang-does-not-fit-region",
} as const;

export type RejectionReason = (typeof REASON)[keyof typeof REASON];
