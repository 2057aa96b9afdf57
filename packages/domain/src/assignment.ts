import type { Checkpoint, CheckpointPolicy, DataMount, TaskState, TaskTemplate, WorkerRendezvous } from "./job.js";
import type { Micros } from "./money.js";

/** One task the scheduler wants an agent to run (or, with `stop`, to stop). */
export interface TaskAssignment {
  taskId: string;
  jobId: string;
  replica: number;
  gpuIndices: number[];
  template: TaskTemplate;
  /** Fencing epoch: the agent reports it back; the scheduler ignores reports for older epochs. */
  epoch: number;
  pricePerGpuHour: Micros;
  tenant: string;
  assignedAtMs: number;
  stop: boolean;
  stopReason: string;
  /** The checkpoint to resume from ($CAPA_RESUME_FROM); absent = start fresh. */
  resumeFrom?: Checkpoint;
  /** Why the task starts fresh although its job has a checkpoint; absent = n/a. */
  resumeNote?: string;
  /** The job's checkpoint policy and data mounts (copied from the spec at placement). */
  checkpoint?: CheckpointPolicy;
  data?: DataMount[];
  /** Training gangs: the worker's place in its generation (the agent turns it into torchrun's env). */
  rendezvous?: WorkerRendezvous;
}

/** An agent's whole desired state (value of KV `capa_allocs/<agentId>`). */
export interface AgentAssignments {
  agentId: string;
  tasks: TaskAssignment[];
  updatedAtMs: number;
}

/** What an agent reports about one task. */
export interface TaskStatusReport {
  taskId: string;
  jobId: string;
  agentId: string;
  epoch: number;
  state: TaskState;
  exitCode: number;
  signal: string;
  startedAtMs: number;
  finishedAtMs: number;
  message: string;
  sentAtMs: number;
  bootId: string;
  /** When the task last signalled a checkpoint (mtime of `$CAPA_CHECKPOINT_FILE`, agent clock); 0/absent = none. */
  lastCheckpointMs?: number;
  /** Newest complete checkpoint in $CAPA_CHECKPOINT_DIR; absent = none this run. */
  checkpoint?: Checkpoint;
  /** Image digest of the container, when the driver could tell. */
  imageDigest?: string;
  /** First "running" report of a run: the checkpoint it resumed from, or why it started fresh. */
  resumedFrom?: Checkpoint;
  resumeNote?: string;
}

export type LogStreamName = "stdout" | "stderr" | "system";

export interface LogChunk {
  taskId: string;
  jobId: string;
  stream: LogStreamName;
  data: Uint8Array;
  seq: number;
  atMs: number;
}

export interface UsageReport {
  taskId: string;
  jobId: string;
  agentId: string;
  epoch: number;
  startedAtMs: number;
  untilMs: number;
  gpus: number;
  gpuMilliseconds: number;
  final: boolean;
  sequence: number;
  /** When the task last signalled a checkpoint (mtime of `$CAPA_CHECKPOINT_FILE`, agent clock); 0/absent = none. */
  lastCheckpointMs?: number;
}
