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

/** Every job state, in lifecycle order. */
export const JOB_STATES: readonly JobState[] = [
  "pending",
  "placed",
  "running",
  "succeeded",
  "failed",
  "cancelled",
  "preempted",
  "rescheduling",
];

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

/**
 * `checkpoint: {dir, every}`. A checkpoint is COMPLETE when it is an entry (file or directory) directly in
 * `$CAPA_CHECKPOINT_DIR` whose name does not start with "." : tasks write into a dot-name (".step-40.tmp") and
 * publish it with an atomic rename, so a half-written checkpoint is never seen under its final name. The newest
 * complete entry (modification time, then name) is the one reported and resumed from.
 */
export interface CheckpointPolicy {
  /** Relative to the task's directory on the agent, or absolute; "" = "checkpoints". */
  dir: string;
  /** How often the task should checkpoint ($CAPA_CHECKPOINT_EVERY_SECONDS); 0 = the task decides. */
  everySeconds: number;
}

export const DEFAULT_CHECKPOINT_DIR = "checkpoints";

/** Where a copy of a checkpoint is (see Checkpoint.copy in types.proto). */
export type CheckpointCopy = "agent" | "stored" | "too-large" | "copy-failed";

/** One complete checkpoint a task reported, and which run wrote it. */
export interface Checkpoint {
  name: string;
  sizeBytes: number;
  /** The entry's modification time (agent clock). */
  createdAtMs: number;
  taskId: string;
  epoch: number;
  agentId: string;
  attempt: number;
  copy: CheckpointCopy;
  /** Why the copy is in its state, for people; "" = nothing to say. */
  copyNote: string;
  /** Object name in the checkpoint store when copy = "stored"; "" otherwise. */
  object: string;
}

/** `data:` one input the agent stages before start: a host path or a URI (`file://` here; a stager per scheme). */
export interface DataMount {
  source: string;
  /** [a-z0-9_-]; the task finds it at $CAPA_DATA_<NAME>. */
  name: string;
  /** Path inside a container; "" = /data/<name>. */
  target: string;
}

/** The env variable that names a data mount's staged path: CAPA_DATA_<NAME>, upper case, "-" → "_". */
export function dataEnvName(name: string): string {
  return `CAPA_DATA_${name.toUpperCase().replace(/-/g, "_")}`;
}

/** A placement that resumed from a checkpoint (checkpoint lineage on the job record). */
export interface LineageEntry {
  taskId: string;
  epoch: number;
  agentId: string;
  attempt: number;
  resumedFrom: Checkpoint;
  atMs: number;
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

/**
 * `elastic: {min, max}`: a training gang that runs with any number of workers from `min` to `max`. The job has
 * `max` tasks (`spec.replicas` = `max`); the placement engine picks the size from capacity and cost, the gang
 * grows when capacity frees and shrinks on loss or preemption instead of failing, never below `min`.
 */
export interface ElasticPolicy {
  min: number;
  max: number;
}

/** One membership of a training gang, as recorded on the job (newest last, bounded). */
export interface Generation {
  generation: number;
  /** Workers in it: the tasks with replica < size (ranks are replica numbers). */
  size: number;
  /** Why it formed: "start", "grew 2 → 4: …", "shrank 4 → 3: …", "restart: …". */
  reason: string;
  atMs: number;
}

/**
 * The rendezvous of a training gang: every placement of the whole gang is a new generation, and every worker
 * gets torchrun's env for it (MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK, CAPA_GENERATION).
 */
export interface Rendezvous {
  /** 1 = the first placement; 0 = never placed. */
  generation: number;
  /** Workers of the current generation (tasks with replica < size); the others stand by. */
  size: number;
  /**
   * Set while the membership changes (a member lost or preempted with enough left to shrink, or a grow that
   * stopped the members): those endings re-place the gang at a new size instead of counting as a retry.
   */
  changing?: { reason: string; sinceMs: number };
  history: Generation[];
}

/** What each worker of a training gang is told about its rendezvous (set by the scheduler, env by the agent). */
export interface WorkerRendezvous {
  generation: number;
  worldSize: number;
  rank: number;
  localRank: number;
  localWorldSize: number;
  masterAddr: string;
  masterPort: number;
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
  /** Training only: run with min..max workers (replicas = max); absent = a fixed-size gang. */
  elastic?: ElasticPolicy;
  /**
   * Fail the job as UNSCHEDULABLE when, this long after submission, no agent could ever hold it (even idle);
   * absent or 0 = keep waiting for agents that may join.
   */
  failIfUnschedulableAfterSeconds?: number;
  /** `checkpoint: {dir, every}`; absent = capa keeps no checkpoints for the job. */
  checkpoint?: CheckpointPolicy;
  /** `data:` inputs the agent stages before each task starts; absent = none. */
  data?: DataMount[];
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
  /** Newest complete checkpoint of this task, of any run (kept across re-placements and retries). */
  checkpoint?: Checkpoint;
  /**
   * The checkpoint this run's assignment names, decided at placement (the task's own newest, or for a training
   * gang the gang's newest: see scheduler/src/checkpoints/resume.ts); absent = none offered.
   */
  resumeFrom?: Checkpoint;
  /** The checkpoint this run started from ($CAPA_RESUME_FROM), as its agent reported; absent = it started fresh. */
  resumedFrom?: Checkpoint;
  /** Why this run did not resume from `checkpoint`; absent = n/a. */
  resumeNote?: string;
  /** Image digest the agent ran (container driver), when it could tell. */
  imageDigest?: string;
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
  /** Checkpoint lineage: every placement that resumed from a checkpoint, oldest first (bounded). */
  lineage?: LineageEntry[];
  /** Training gangs: the current generation of the gang and its history. */
  rendezvous?: Rendezvous;
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

/**
 * Back to pending for a new placement (a retry, or an elastic gang's standby). The agent id is cleared so a late
 * report of the old run is stale (fold fences on agent and epoch) and the old listing no longer matches (reconcile
 * removes it); the epoch stays, which marks the task as one that ran before (a gang restart waits for such tasks).
 */
export function resetTaskToPending(t: Task, message: string): void {
  Object.assign(t, {
    state: "pending",
    agentId: "",
    gpuIndices: [],
    gpuUuids: [],
    exitCode: 0,
    signal: "",
    startedAtMs: 0,
    finishedAtMs: 0,
    message,
    lastCheckpointMs: 0,
  });
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
export function foldJobState(job: Pick<Job, "tasks" | "cancelRequested" | "state" | "rendezvous">): JobState {
  if (isFinalJobState(job.state)) return job.state;
  const tasks = job.tasks;
  // An elastic gang's standby tasks (replica >= size, never placed in this generation) do not hold it back.
  const members = memberTasks(job);
  const allFinal = tasks.every((t) => isFinalTaskState(t.state) || t.state === "pending");
  if (job.cancelRequested) return allFinal ? "cancelled" : job.state;
  if (tasks.some((t) => t.state === "failed")) return "failed";
  if (members.length > 0 && members.every((t) => t.state === "succeeded")) return "succeeded";
  if (tasks.some((t) => t.state === "lost" || t.state === "preempted" || t.state === "rejected")) {
    return "rescheduling";
  }
  if (tasks.some((t) => t.state === "running" || t.state === "succeeded")) return "running";
  if (tasks.some((t) => t.state === "assigned" || t.state === "starting")) return "placed";
  return "pending";
}

/**
 * The tasks of the gang's current generation: all tasks, except for an elastic gang placed at fewer than
 * `max` workers, whose standby tasks (replica >= size, pending) are left out.
 */
export function memberTasks<T extends Pick<Task, "replica" | "state">>(job: {
  tasks: T[];
  rendezvous?: Pick<Rendezvous, "size" | "generation">;
}): T[] {
  const r = job.rendezvous;
  if (!r || r.generation === 0 || r.size >= job.tasks.length) return job.tasks;
  return job.tasks.filter((t) => t.replica < r.size || t.state !== "pending");
}

/** GPUs the whole job needs. */
export function totalGpus(spec: Pick<JobSpec, "replicas" | "gpusPerReplica">): number {
  return spec.replicas * spec.gpusPerReplica;
}

/** Bytes for people, binary units: 512 B, 1.5 KiB, 64 MiB, 2.0 GiB. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0
    ? `${value} B`
    : `${value >= 10 || Number.isInteger(value) ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}
