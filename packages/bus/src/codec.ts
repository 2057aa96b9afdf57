/**
 * Converts between generated protobuf types (@capa/api) and domain types (@capa/domain). This is the only
 * place besides the gRPC edge that sees generated code; everything inward works on domain types.
 */
import * as pb from "@capa/api";
import type {
  Advert,
  AgentAssignments,
  Checkpoint,
  CheckpointCopy,
  CheckpointPolicy,
  DataMount,
  Gpu,
  GpuHealth,
  GpuPrice,
  Heartbeat,
  Job,
  JobKind,
  JobSpec,
  JobState,
  LineageEntry,
  LogChunk,
  LogStreamName,
  Rendezvous,
  RetryOn,
  Task,
  TaskAssignment,
  TaskState,
  TaskStatusReport,
  TaskTemplate,
  UsageReport,
} from "@capa/domain";

// ---- enums -------------------------------------------------------------------------------------------

const JOB_KIND_TO_PB: Record<JobKind, pb.JobKind> = {
  training: pb.JobKind.JOB_KIND_TRAINING,
  inference: pb.JobKind.JOB_KIND_INFERENCE,
  batch: pb.JobKind.JOB_KIND_BATCH,
};
const JOB_STATE_TO_PB: Record<JobState, pb.JobState> = {
  pending: pb.JobState.JOB_STATE_PENDING,
  placed: pb.JobState.JOB_STATE_PLACED,
  running: pb.JobState.JOB_STATE_RUNNING,
  succeeded: pb.JobState.JOB_STATE_SUCCEEDED,
  failed: pb.JobState.JOB_STATE_FAILED,
  cancelled: pb.JobState.JOB_STATE_CANCELLED,
  preempted: pb.JobState.JOB_STATE_PREEMPTED,
  rescheduling: pb.JobState.JOB_STATE_RESCHEDULING,
};
const TASK_STATE_TO_PB: Record<TaskState, pb.TaskState> = {
  pending: pb.TaskState.TASK_STATE_PENDING,
  assigned: pb.TaskState.TASK_STATE_ASSIGNED,
  starting: pb.TaskState.TASK_STATE_STARTING,
  running: pb.TaskState.TASK_STATE_RUNNING,
  succeeded: pb.TaskState.TASK_STATE_SUCCEEDED,
  failed: pb.TaskState.TASK_STATE_FAILED,
  cancelled: pb.TaskState.TASK_STATE_CANCELLED,
  rejected: pb.TaskState.TASK_STATE_REJECTED,
  lost: pb.TaskState.TASK_STATE_LOST,
  preempted: pb.TaskState.TASK_STATE_PREEMPTED,
};
const LOG_STREAM_TO_PB: Record<LogStreamName, pb.LogStream> = {
  stdout: pb.LogStream.LOG_STREAM_STDOUT,
  stderr: pb.LogStream.LOG_STREAM_STDERR,
  system: pb.LogStream.LOG_STREAM_SYSTEM,
};

function invert<K extends string, V extends number>(map: Record<K, V>): Map<number, K> {
  return new Map(Object.entries(map).map(([k, v]) => [v as number, k as K]));
}
const JOB_KIND_FROM_PB = invert(JOB_KIND_TO_PB);
const JOB_STATE_FROM_PB = invert(JOB_STATE_TO_PB);
const TASK_STATE_FROM_PB = invert(TASK_STATE_TO_PB);
const LOG_STREAM_FROM_PB = invert(LOG_STREAM_TO_PB);

export const jobKindToPb = (k: JobKind): pb.JobKind => JOB_KIND_TO_PB[k];
/** Undefined for UNSPECIFIED or unknown values: the caller reports the field. */
export const jobKindFromPb = (k: pb.JobKind): JobKind | undefined => JOB_KIND_FROM_PB.get(k);
export const jobStateToPb = (s: JobState): pb.JobState => JOB_STATE_TO_PB[s];
export const jobStateFromPb = (s: pb.JobState): JobState | undefined => JOB_STATE_FROM_PB.get(s);
export const taskStateToPb = (s: TaskState): pb.TaskState => TASK_STATE_TO_PB[s];
export const taskStateFromPb = (s: pb.TaskState): TaskState | undefined => TASK_STATE_FROM_PB.get(s);
export const logStreamToPb = (s: LogStreamName): pb.LogStream => LOG_STREAM_TO_PB[s];
export const logStreamFromPb = (s: pb.LogStream): LogStreamName => LOG_STREAM_FROM_PB.get(s) ?? "system";

// ---- job spec / job / task ----------------------------------------------------------------------------

export function templateToPb(t: TaskTemplate): pb.TaskTemplate {
  return {
    command: [...t.command],
    env: { ...t.env },
    workingDir: t.workingDir,
    killGraceSeconds: t.killGraceSeconds,
    image: t.image ?? "",
    secretEnvNames: [...(t.secretEnvNames ?? [])],
  };
}
export function templateFromPb(t: pb.TaskTemplate | undefined): TaskTemplate {
  return {
    command: [...(t?.command ?? [])],
    env: { ...(t?.env ?? {}) },
    workingDir: t?.workingDir ?? "",
    killGraceSeconds: t?.killGraceSeconds ?? 0,
    ...(t?.image && { image: t.image }),
    ...(t?.secretEnvNames?.length ? { secretEnvNames: [...t.secretEnvNames] } : {}),
  };
}

const policyToPb = (c: CheckpointPolicy | undefined) => c && { dir: c.dir, everySeconds: c.everySeconds };
const dataToPb = (d: DataMount[] | undefined) =>
  (d ?? []).map((m) => ({ source: m.source, name: m.name, target: m.target }));
/** Only when set, so specs (and their request digests) without them are unchanged. */
const policyFromPb = (c: pb.CheckpointPolicy | undefined) =>
  c ? { checkpoint: { dir: c.dir, everySeconds: c.everySeconds } } : {};
const dataFromPb = (d: pb.DataMount[] | undefined) =>
  d?.length ? { data: d.map((m) => ({ source: m.source, name: m.name, target: m.target })) } : {};

const CHECKPOINT_COPIES: ReadonlySet<string> = new Set<CheckpointCopy>(["agent", "stored", "too-large", "copy-failed"]);

export function checkpointToPb(c: Checkpoint): pb.Checkpoint {
  return { ...c };
}
export function checkpointFromPb(c: pb.Checkpoint): Checkpoint {
  return { ...c, copy: (CHECKPOINT_COPIES.has(c.copy) ? c.copy : "agent") as CheckpointCopy };
}

function lineageToPb(l: LineageEntry): pb.LineageEntry {
  return { ...l, resumedFrom: checkpointToPb(l.resumedFrom) };
}
function lineageFromPb(l: pb.LineageEntry): LineageEntry {
  return { ...l, resumedFrom: checkpointFromPb(l.resumedFrom ?? pb.Checkpoint.fromPartial({})) };
}

export function jobSpecToPb(s: JobSpec): pb.JobSpec {
  return {
    name: s.name,
    kind: jobKindToPb(s.kind),
    replicas: s.replicas,
    gpusPerReplica: s.gpusPerReplica,
    gpuModels: [...s.gpuModels],
    minVramMib: s.minVramMib,
    regions: [...s.regions],
    excludeRegions: [...s.excludeRegions],
    dataRegion: s.dataRegion,
    residency: s.residency,
    maxPriceMicrosPerGpuHour: s.maxPricePerGpuHour,
    budgetMicros: s.budget,
    priority: s.priority,
    interruptible: s.interruptible,
    expectedDurationSeconds: s.expectedDurationSeconds,
    demandByRegion: { ...s.demandByRegion },
    allowFabricSpanning: s.allowFabricSpanning,
    nodeSelector: { ...s.nodeSelector },
    template: templateToPb(s.template),
    deadlineUnixMs: s.deadlineUnixMs,
    retries: s.retries
      ? { max: s.retries.max, backoffSeconds: s.retries.backoffSeconds, on: [...s.retries.on] }
      : undefined,
    failIfUnschedulableAfterSeconds: s.failIfUnschedulableAfterSeconds ?? 0,
    checkpoint: policyToPb(s.checkpoint),
    data: dataToPb(s.data),
    elastic: s.elastic ? { minReplicas: s.elastic.min, maxReplicas: s.elastic.max } : undefined,
  };
}

/**
 * Converts a wire spec. An unknown kind becomes `undefined` in `kind` so validation can name the field;
 * everything else is copied as sent (validation bounds it).
 */
export function jobSpecFromPb(s: pb.JobSpec | undefined): Omit<JobSpec, "kind"> & { kind: JobKind | undefined } {
  const spec = s ?? pb.JobSpec.fromPartial({});
  return {
    name: spec.name,
    kind: jobKindFromPb(spec.kind),
    replicas: spec.replicas,
    gpusPerReplica: spec.gpusPerReplica,
    gpuModels: [...spec.gpuModels],
    minVramMib: spec.minVramMib,
    regions: [...spec.regions],
    excludeRegions: [...spec.excludeRegions],
    dataRegion: spec.dataRegion,
    residency: spec.residency,
    maxPricePerGpuHour: spec.maxPriceMicrosPerGpuHour,
    budget: spec.budgetMicros,
    priority: spec.priority,
    interruptible: spec.interruptible,
    expectedDurationSeconds: spec.expectedDurationSeconds,
    demandByRegion: { ...spec.demandByRegion },
    allowFabricSpanning: spec.allowFabricSpanning,
    nodeSelector: { ...spec.nodeSelector },
    template: templateFromPb(spec.template),
    deadlineUnixMs: spec.deadlineUnixMs,
    // Unknown reasons are kept as sent so validation names them.
    ...(spec.retries && {
      retries: {
        max: spec.retries.max,
        backoffSeconds: spec.retries.backoffSeconds,
        on: [...spec.retries.on] as RetryOn[],
      },
    }),
    // Only when set, so specs (and their request digests) without it are unchanged.
    ...(spec.failIfUnschedulableAfterSeconds
      ? { failIfUnschedulableAfterSeconds: spec.failIfUnschedulableAfterSeconds }
      : {}),
    ...policyFromPb(spec.checkpoint),
    ...dataFromPb(spec.data),
    ...(spec.elastic && { elastic: { min: spec.elastic.minReplicas, max: spec.elastic.maxReplicas } }),
  };
}

export function taskToPb(t: Task): pb.Task {
  return {
    id: t.id,
    replica: t.replica,
    state: taskStateToPb(t.state),
    agentId: t.agentId,
    region: t.region,
    gpuIndices: [...t.gpuIndices],
    gpuUuids: [...t.gpuUuids],
    gpuModel: t.gpuModel,
    priceMicrosPerGpuHour: t.pricePerGpuHour,
    epoch: t.epoch,
    exitCode: t.exitCode,
    signal: t.signal,
    placedAtMs: t.placedAtMs,
    startedAtMs: t.startedAtMs,
    finishedAtMs: t.finishedAtMs,
    message: t.message,
    interruptible: t.interruptible,
    lastCheckpointUnixMs: t.lastCheckpointMs ?? 0,
    notBeforeMs: t.notBeforeMs ?? 0,
    checkpoint: t.checkpoint && checkpointToPb(t.checkpoint),
    resumeFrom: t.resumeFrom && checkpointToPb(t.resumeFrom),
    resumedFrom: t.resumedFrom && checkpointToPb(t.resumedFrom),
    resumeNote: t.resumeNote ?? "",
    imageDigest: t.imageDigest ?? "",
  };
}
export function taskFromPb(t: pb.Task): Task {
  return {
    id: t.id,
    replica: t.replica,
    state: taskStateFromPb(t.state) ?? "pending",
    agentId: t.agentId,
    region: t.region,
    gpuIndices: [...t.gpuIndices],
    gpuUuids: [...t.gpuUuids],
    gpuModel: t.gpuModel,
    pricePerGpuHour: t.priceMicrosPerGpuHour,
    epoch: t.epoch,
    exitCode: t.exitCode,
    signal: t.signal,
    placedAtMs: t.placedAtMs,
    startedAtMs: t.startedAtMs,
    finishedAtMs: t.finishedAtMs,
    message: t.message,
    interruptible: t.interruptible,
    lastCheckpointMs: t.lastCheckpointUnixMs,
    ...(t.notBeforeMs > 0 && { notBeforeMs: t.notBeforeMs }),
    ...(t.checkpoint && { checkpoint: checkpointFromPb(t.checkpoint) }),
    ...(t.resumeFrom && { resumeFrom: checkpointFromPb(t.resumeFrom) }),
    ...(t.resumedFrom && { resumedFrom: checkpointFromPb(t.resumedFrom) }),
    ...(t.resumeNote && { resumeNote: t.resumeNote }),
    ...(t.imageDigest && { imageDigest: t.imageDigest }),
  };
}

export function jobToPb(j: Job): pb.Job {
  return {
    id: j.id,
    tenant: j.tenant,
    requestId: j.requestId,
    spec: jobSpecToPb(j.spec),
    state: jobStateToPb(j.state),
    reason: j.reason,
    tasks: j.tasks.map(taskToPb),
    createdAtMs: j.createdAtMs,
    updatedAtMs: j.updatedAtMs,
    finishedAtMs: j.finishedAtMs,
    cancelRequested: j.cancelRequested,
    spentMicros: j.spent,
    reservedMicros: j.reserved,
    attempt: j.attempt ?? 0,
    attemptStartedAtMs: j.attemptStartedAtMs ?? 0,
    attempts: (j.attempts ?? []).map((a) => ({ ...a })),
    lineage: (j.lineage ?? []).map(lineageToPb),
    rendezvous: j.rendezvous ? rendezvousToPb(j.rendezvous) : undefined,
  };
}

function rendezvousToPb(r: Rendezvous): pb.Rendezvous {
  return {
    generation: r.generation,
    size: r.size,
    changingReason: r.changing?.reason ?? "",
    changingSinceMs: r.changing?.sinceMs ?? 0,
    history: r.history.map((g) => ({ ...g })),
  };
}
function rendezvousFromPb(r: pb.Rendezvous): Rendezvous {
  return {
    generation: r.generation,
    size: r.size,
    ...(r.changingReason && { changing: { reason: r.changingReason, sinceMs: r.changingSinceMs } }),
    history: r.history.map((g) => ({ ...g })),
  };
}
export function jobFromPb(j: pb.Job): Job {
  const spec = jobSpecFromPb(j.spec);
  return {
    id: j.id,
    tenant: j.tenant,
    requestId: j.requestId,
    spec: { ...spec, kind: spec.kind ?? "batch" },
    state: jobStateFromPb(j.state) ?? "pending",
    reason: j.reason,
    tasks: j.tasks.map(taskFromPb),
    createdAtMs: j.createdAtMs,
    updatedAtMs: j.updatedAtMs,
    finishedAtMs: j.finishedAtMs,
    cancelRequested: j.cancelRequested,
    spent: j.spentMicros,
    reserved: j.reservedMicros,
    ...(j.attempt > 0 && { attempt: j.attempt }),
    ...(j.attemptStartedAtMs > 0 && { attemptStartedAtMs: j.attemptStartedAtMs }),
    ...(j.attempts.length > 0 && { attempts: j.attempts.map((a) => ({ ...a })) }),
    ...(j.lineage.length > 0 && { lineage: j.lineage.map(lineageFromPb) }),
    ...(j.rendezvous && { rendezvous: rendezvousFromPb(j.rendezvous) }),
  };
}

// ---- agents -------------------------------------------------------------------------------------------

const HEALTH: ReadonlySet<string> = new Set(["ok", "degraded", "failed"]);

export function gpuToPb(g: Gpu): pb.Gpu {
  return { ...g };
}
export function gpuFromPb(g: pb.Gpu): Gpu {
  return { ...g, health: (HEALTH.has(g.health) ? g.health : "failed") as GpuHealth };
}
export function priceToPb(p: GpuPrice): pb.GpuPrice {
  return {
    gpuModel: p.gpuModel,
    onDemandMicrosPerHour: p.onDemandPerHour,
    interruptibleMicrosPerHour: p.interruptiblePerHour,
  };
}
export function priceFromPb(p: pb.GpuPrice): GpuPrice {
  return {
    gpuModel: p.gpuModel,
    onDemandPerHour: p.onDemandMicrosPerHour,
    interruptiblePerHour: p.interruptibleMicrosPerHour,
  };
}

export function advertToPb(a: Advert): pb.AgentAdvert {
  return {
    ...a,
    gpus: a.gpus.map(gpuToPb),
    prices: a.prices.map(priceToPb),
    labels: { ...a.labels },
    drivers: [...(a.drivers ?? [])],
  };
}
export function advertFromPb(a: pb.AgentAdvert): Advert {
  const { drivers, ...rest } = a;
  return {
    ...rest,
    gpus: a.gpus.map(gpuFromPb),
    prices: a.prices.map(priceFromPb),
    labels: { ...a.labels },
    // An older agent sends none: it runs processes only.
    drivers: drivers.length > 0 ? [...drivers] : ["process"],
  };
}
export function heartbeatToPb(h: Heartbeat): pb.AgentHeartbeat {
  return { ...h, gpus: h.gpus.map(gpuToPb), runningTaskIds: [...h.runningTaskIds] };
}
export function heartbeatFromPb(h: pb.AgentHeartbeat): Heartbeat {
  return { ...h, gpus: h.gpus.map(gpuFromPb), runningTaskIds: [...h.runningTaskIds] };
}

// ---- assignments, status, logs, usage ---------------------------------------------------------------------

export function assignmentToPb(t: TaskAssignment): pb.TaskAssignment {
  return {
    taskId: t.taskId,
    jobId: t.jobId,
    replica: t.replica,
    gpuIndices: [...t.gpuIndices],
    template: templateToPb(t.template),
    epoch: t.epoch,
    priceMicrosPerGpuHour: t.pricePerGpuHour,
    tenant: t.tenant,
    assignedAtMs: t.assignedAtMs,
    stop: t.stop,
    stopReason: t.stopReason,
    resumeFrom: t.resumeFrom && checkpointToPb(t.resumeFrom),
    resumeNote: t.resumeNote ?? "",
    checkpoint: policyToPb(t.checkpoint),
    data: dataToPb(t.data),
    rendezvous: t.rendezvous ? { ...t.rendezvous } : undefined,
  };
}
export function assignmentFromPb(t: pb.TaskAssignment): TaskAssignment {
  return {
    taskId: t.taskId,
    jobId: t.jobId,
    replica: t.replica,
    gpuIndices: [...t.gpuIndices],
    template: templateFromPb(t.template),
    epoch: t.epoch,
    pricePerGpuHour: t.priceMicrosPerGpuHour,
    tenant: t.tenant,
    assignedAtMs: t.assignedAtMs,
    stop: t.stop,
    stopReason: t.stopReason,
    ...(t.resumeFrom && { resumeFrom: checkpointFromPb(t.resumeFrom) }),
    ...(t.resumeNote && { resumeNote: t.resumeNote }),
    ...policyFromPb(t.checkpoint),
    ...dataFromPb(t.data),
    ...(t.rendezvous && { rendezvous: { ...t.rendezvous } }),
  };
}

export function statusToPb(s: TaskStatusReport): pb.TaskStatus {
  const { lastCheckpointMs, checkpoint, imageDigest, resumedFrom, resumeNote, ...rest } = s;
  return {
    ...rest,
    state: taskStateToPb(s.state),
    lastCheckpointUnixMs: lastCheckpointMs ?? 0,
    checkpoint: checkpoint && checkpointToPb(checkpoint),
    imageDigest: imageDigest ?? "",
    resumedFrom: resumedFrom && checkpointToPb(resumedFrom),
    resumeNote: resumeNote ?? "",
  };
}
export function statusFromPb(s: pb.TaskStatus): TaskStatusReport {
  const { lastCheckpointUnixMs, checkpoint, imageDigest, resumedFrom, resumeNote, ...rest } = s;
  return {
    ...rest,
    state: taskStateFromPb(s.state) ?? "failed",
    lastCheckpointMs: lastCheckpointUnixMs,
    ...(checkpoint && { checkpoint: checkpointFromPb(checkpoint) }),
    ...(imageDigest && { imageDigest }),
    ...(resumedFrom && { resumedFrom: checkpointFromPb(resumedFrom) }),
    ...(resumeNote && { resumeNote }),
  };
}

export function usageToPb(u: UsageReport): pb.UsageReport {
  const { lastCheckpointMs, ...rest } = u;
  return { ...rest, lastCheckpointUnixMs: lastCheckpointMs ?? 0 };
}
export function usageFromPb(u: pb.UsageReport): UsageReport {
  const { lastCheckpointUnixMs, ...rest } = u;
  return { ...rest, lastCheckpointMs: lastCheckpointUnixMs };
}

// ---- checkpoint copies (agent ⇄ scheduler request-reply; see subjects.checkpointPut) ---------------------

/** One chunk of a checkpoint copy (tar of the entry) from the agent that holds the task. */
export interface CheckpointChunkMessage {
  taskId: string;
  epoch: number;
  name: string;
  seq: number;
  data: Uint8Array;
  sizeBytes: number;
  chunks: number;
  last: boolean;
}
export interface CheckpointGetMessage {
  taskId: string;
  epoch: number;
  seq: number;
}
export type CheckpointRefusal = "not-held" | "too-large" | "missing" | "invalid" | "unavailable";
export interface CheckpointReplyMessage {
  ok: boolean;
  error: CheckpointRefusal | "";
  message: string;
  data: Uint8Array;
  chunks: number;
  sizeBytes: number;
  maxBytes: number;
  object: string;
}
export const checkpointReply = (r: Partial<CheckpointReplyMessage>): CheckpointReplyMessage => ({
  ok: false,
  error: "",
  message: "",
  data: new Uint8Array(0),
  chunks: 0,
  sizeBytes: 0,
  maxBytes: 0,
  object: "",
  ...r,
});

// ---- byte codecs: what actually travels ---------------------------------------------------------------

export const encode = {
  advert: (a: Advert) => pb.AgentAdvert.encode(advertToPb(a)).finish(),
  heartbeat: (h: Heartbeat) => pb.AgentHeartbeat.encode(heartbeatToPb(h)).finish(),
  assignments: (a: AgentAssignments) =>
    pb.AgentAssignments.encode({
      agentId: a.agentId,
      tasks: a.tasks.map(assignmentToPb),
      updatedAtMs: a.updatedAtMs,
    }).finish(),
  status: (s: TaskStatusReport) => pb.TaskStatus.encode(statusToPb(s)).finish(),
  log: (l: LogChunk) =>
    pb.LogChunk.encode({
      ...l,
      data: Buffer.from(l.data.buffer, l.data.byteOffset, l.data.byteLength),
      stream: logStreamToPb(l.stream),
    }).finish(),
  usage: (u: UsageReport) => pb.UsageReport.encode(usageToPb(u)).finish(),
  job: (j: Job) => pb.Job.encode(jobToPb(j)).finish(),
  checkpointChunk: (c: CheckpointChunkMessage) =>
    pb.CheckpointChunk.encode({
      ...c,
      data: Buffer.from(c.data.buffer, c.data.byteOffset, c.data.byteLength),
    }).finish(),
  checkpointGet: (g: CheckpointGetMessage) => pb.CheckpointGet.encode(g).finish(),
  checkpointReply: (r: CheckpointReplyMessage) =>
    pb.CheckpointReply.encode({
      ...r,
      data: Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength),
    }).finish(),
};

export const decode = {
  advert: (b: Uint8Array) => advertFromPb(pb.AgentAdvert.decode(b)),
  heartbeat: (b: Uint8Array) => heartbeatFromPb(pb.AgentHeartbeat.decode(b)),
  assignments: (b: Uint8Array): AgentAssignments => {
    const m = pb.AgentAssignments.decode(b);
    return { agentId: m.agentId, tasks: m.tasks.map(assignmentFromPb), updatedAtMs: m.updatedAtMs };
  },
  status: (b: Uint8Array) => statusFromPb(pb.TaskStatus.decode(b)),
  log: (b: Uint8Array): LogChunk => {
    const m = pb.LogChunk.decode(b);
    return { ...m, stream: logStreamFromPb(m.stream) };
  },
  usage: (b: Uint8Array): UsageReport => usageFromPb(pb.UsageReport.decode(b)),
  job: (b: Uint8Array) => jobFromPb(pb.Job.decode(b)),
  checkpointChunk: (b: Uint8Array): CheckpointChunkMessage => pb.CheckpointChunk.decode(b),
  checkpointGet: (b: Uint8Array): CheckpointGetMessage => pb.CheckpointGet.decode(b),
  checkpointReply: (b: Uint8Array): CheckpointReplyMessage => {
    const r = pb.CheckpointReply.decode(b);
    return { ...r, error: r.error as CheckpointRefusal | "" };
  },
};
