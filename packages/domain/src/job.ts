import type { Micros } from "./money.js";

export type JobKind = "training" | "inference" | "batch";
export const JOB_KINDS: readonly JobKind[] = ["training", "inference", "batch"];

export type JobState =
  | "pending"
  | "placed"
  | "running"
  | "succeeded"
  | "failed"
  | "cancelled"
  | "preempted"
  | "rescheduling";

export type TaskState =
  | "pending"
  | "assigned"
  | "starting"
  | "running"
  | "succeeded"
  | "failed"
  | "cancelled"
  | "rejected"
  | "lost"
  | "preempted";

export const FINAL_JOB_STATES: ReadonlySet<JobState> = new Set(["succeeded", "failed", "cancelled"]);
/** A task in one of these states no longer holds GPUs. */
export const FINAL_TASK_STATES: ReadonlySet<TaskState> = new Set([
  "succeeded",
  "failed",
  "cancelled",
  "rejected",
  "lost",
  "preempted",
]);

export function isFinalJobState(state: JobState): boolean {
  return FINAL_JOB_STATES.has(state);
}
export function isFinalTaskState(state: TaskState): boolean {
  return FINAL_TASK_STATES.has(state);
}

export interface TaskTemplate {
  /** argv; the first element is the program. */
  command: string[];
  env: Record<string, string>;
  workingDir: string;
  /** Seconds between SIGTERM and SIGKILL on cancel. */
  killGraceSeconds: number;
  /** OCI image to run the command in (container driver); absent or "" = a host process. */
  image?: string;
  /** Env names whose values are secrets: delivered to the task, answered as "***" by the API, never logged. */
  secretEnvNames?: string[];
}

/** How an agent runs a task: as a host process, or in an OCI container. */
export type TaskDriverName = "process" | "container";

/** The driver a task needs: an image needs the container driver. */
export function requiredDriver(template: Pick<TaskTemplate, "image">): TaskDriverName {
  return template.image ? "container" : "process";
}

/** What ends an attempt and starts the next one under a retry policy. */
export type RetryOn = "failed" | "lost" | "preempted";
export const RETRY_ON: readonly RetryOn[] = ["failed", "lost", "preempted"];

/** `retries: {max, backoff, on}`: up to `max` further attempts, `backoffSeconds` doubling between them. */
export interface RetryPolicy {
  max: number;
  backoffSeconds: number;
  on: RetryOn[];
}

/** One run of a job (a gang restarts as a whole, so one attempt covers every task of the run). */
export interface Attempt {
  /** 1 = the first run. */
  number: number;
  /** How it ended: "failed", "lost", "preempted" (it started a retry) or the job's final state. */
  outcome: string;
  /** The task whose end decided the attempt, where it ran, and how it exited. */
  taskId: string;
  agentId: string;
  exitCode: number;
  signal: string;
  reason: string;
  startedAtMs: number;
  finishedAtMs: number;
}

/** What a tenant asks for. Empty lists and zeros mean "no constraint". */
export interface JobSpec {
  name: string;
  kind: JobKind;
  replicas: number;
  gpusPerReplica: number;
  gpuModels: string[];
  minVramMib: number;
  regions: string[];
  excludeRegions: string[];
  dataRegion: string;
  residency: string;
  maxPricePerGpuHour: Micros;
  budget: Micros;
  priority: number;
  interruptible: boolean;
  expectedDurationSeconds: number;
  demandByRegion: Record<string, number>;
  allowFabricSpanning: boolean;
  nodeSelector: Record<string, string>;
  template: TaskTemplate;
  deadlineUnixMs: number;
  /** Absent (or max 0): a failed task fails the job; lost and preempted tasks are re-placed without limit. */
  retries?: RetryPolicy;
  /**
   * Fail the job as UNSCHEDULABLE when, this long after submission, no agent could ever hold it (even idle);
   * absent or 0 = keep waiting for agents that may join.
   */
  failIfUnschedulableAfterSeconds?: number;
}

export interface Task {
  id: string;
  replica: number;
  state: TaskState;
  agentId: string;
  region: string;
  gpuIndices: number[];
  gpuUuids: string[];
  gpuModel: string;
  /** Locked at placement. */
  pricePerGpuHour: Micros;
  /** Fencing epoch of the allocation this task runs under. */
  epoch: number;
  exitCode: number;
  signal: string;
  placedAtMs: number;
  startedAtMs: number;
  finishedAtMs: number;
  message: string;
  interruptible: boolean;
  /**
   * Last checkpoint the task reported in its current allocation (clamped to the scheduler's clock); 0 or absent =
   * none, so all work since its start would be lost. Preemption prefers victims that lose the least.
   */
  lastCheckpointMs?: number;
  /** A retry waits for its backoff: not placed before this time (scheduler clock); 0 or absent = now. */
  notBeforeMs?: number;
}

export interface Job {
  id: string;
  tenant: string;
  requestId: string;
  spec: JobSpec;
  state: JobState;
  reason: string;
  tasks: Task[];
  createdAtMs: number;
  updatedAtMs: number;
  finishedAtMs: number;
  cancelRequested: boolean;
  spent: Micros;
  reserved: Micros;
  /** The attempt the job is on (1 = first run; absent = 1) and when it began; only jobs with a retry policy. */
  attempt?: number;
  attemptStartedAtMs?: number;
  /** Every finished attempt, oldest first (bounded). */
  attempts?: Attempt[];
}

export const DEFAULT_KILL_GRACE_SECONDS = 10;

/** A spec with every field at its "no constraint" default; callers override what they need. */
export function defaultJobSpec(overrides: Partial<JobSpec> = {}): JobSpec {
  return {
    name: "",
    kind: "batch",
    replicas: 1,
    gpusPerReplica: 1,
    gpuModels: [],
    minVramMib: 0,
    regions: [],
    excludeRegions: [],
    dataRegion: "",
    residency: "",
    maxPricePerGpuHour: 0,
    budget: 0,
    priority: 0,
    interruptible: false,
    expectedDurationSeconds: 0,
    demandByRegion: {},
    allowFabricSpanning: false,
    nodeSelector: {},
    template: { command: [], env: {}, workingDir: "", killGraceSeconds: DEFAULT_KILL_GRACE_SECONDS },
    deadlineUnixMs: 0,
    ...overrides,
  };
}

export function newTask(jobId: string, replica: number): Task {
  return {
    id: taskIdFor(jobId, replica),
    replica,
    state: "pending",
    agentId: "",
    region: "",
    gpuIndices: [],
    gpuUuids: [],
    gpuModel: "",
    pricePerGpuHour: 0,
    epoch: 0,
    exitCode: 0,
    signal: "",
    placedAtMs: 0,
    startedAtMs: 0,
    finishedAtMs: 0,
    message: "",
    interruptible: false,
    lastCheckpointMs: 0,
  };
}

/** Task ids are `<jobId>-<replica>`: one NATS token, so `capa.v1.task.<taskId>.*` stays well-formed. */
export function taskIdFor(jobId: string, replica: number): string {
  return `${jobId}-${replica}`;
}

export function jobIdOfTask(taskId: string): string {
  const dash = taskId.lastIndexOf("-");
  return dash < 0 ? taskId : taskId.slice(0, dash);
}

/**
 * Folds task states into the job state.
 * - Any failed task fails the job (for training a gang member failing fails the gang; for batch and inference
 *   the tenant asked for all replicas, so one failure is a failed job too).
 * - Cancel requested and every task final → cancelled.
 * - All tasks succeeded → succeeded.
 * - Any task running → running; else any placed/assigned/starting → placed; else pending.
 * - A lost or preempted task while the job is not final → rescheduling (the scheduler re-places it).
 */
export function foldJobState(job: Pick<Job, "tasks" | "cancelRequested" | "state">): JobState {
  if (isFinalJobState(job.state)) return job.state;
  const tasks = job.tasks;
  const allFinal = tasks.every((t) => isFinalTaskState(t.state) || t.state === "pending");
  if (job.cancelRequested) return allFinal ? "cancelled" : job.state;
  if (tasks.some((t) => t.state === "failed")) return "failed";
  if (tasks.length > 0 && tasks.every((t) => t.state === "succeeded")) return "succeeded";
  if (tasks.some((t) => t.state === "lost" || t.state === "preempted" || t.state === "rejected")) {
    return "rescheduling";
  }
  if (tasks.some((t) => t.state === "running" || t.state === "succeeded")) return "running";
  if (tasks.some((t) => t.state === "assigned" || t.state === "starting")) return "placed";
  return "pending";
}

/** GPUs the whole job needs. */
export function totalGpus(spec: Pick<JobSpec, "replicas" | "gpusPerReplica">): number {
  return spec.replicas * spec.gpusPerReplica;
}
