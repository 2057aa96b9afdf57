/**
 * Every NATS subject, bucket and stream name capa uses, in one file. The subject tree mirrors the security model
 * (@capa/nats-auth turns it into nats-server permissions): an agent publishes only under its own
 * `agent.<region>.<agentId>` and on task subjects that end in its own id, `task.<taskId>.<kind>.<agentId>`, so
 * the broker proves who sent a task report and the scheduler only has to check that the agent holds the task.
 */
export const SUBJECT_ROOT = "capa.v1";

export const BUCKETS = {
  jobs: "capa_jobs",
  agents: "capa_agents",
  allocs: "capa_allocs",
  leader: "capa_leader",
  policy: "capa_policy",
  requests: "capa_requests",
  /** Inference services (scheduler/src/services): JSON ServiceRecord per `<tenant>.<name>`. */
  services: "capa_services",
  /** Live endpoint set per `<tenant>.<service>.<region>` (JSON), written by the service controller. */
  endpoints: "capa_endpoints",
  /** Schedules (scheduler/src/schedules): JSON ScheduleRecord per `<tenant>.<name>`, with its run history. */
  schedules: "capa_schedules",
} as const;

/**
 * The request-id registers (scheduler/src/requests): `capa_requests` alone on a single server; all three, each
 * an independent Raft group with its leader on its own server, once the store has 3 replicas. A request id's job
 * id is the one a majority of them holds, so one server's death leaves two registers that decide without waiting
 * for the third's election. Scheduler-only.
 */
export const REQUEST_REGISTERS = [BUCKETS.requests, "capa_requests_1", "capa_requests_2"] as const;

/** JetStream Object Store buckets (stream `OBJ_<name>`): only the scheduler reads or writes them. */
export const OBJECT_BUCKETS = {
  /** Checkpoint copies: `<taskId>/<epoch>/<name>` (manifest) and `.../<seq>` (chunks). */
  checkpoints: "capa_checkpoints",
} as const;

export const STREAMS = {
  /** Task status and usage from agents (`capa.v1.task.*.status`, `capa.v1.task.*.usage`): state and billing. */
  tasks: "CAPA_TASKS",
  /** Task logs from agents (`capa.v1.task.*.logs`), kept apart so a noisy task never evicts status or usage. */
  logs: "CAPA_LOGS",
} as const;

/**
 * The submit fallback's intake streams (scheduler/src/jobs/intake.ts): durable pending submissions, written when
 * the normal submit path stalls on a leaderless stream. Two, so one server's death leaves one with a live leader
 * (the leader keeper spreads their Raft leaders). Scheduler-only: no agent or tenant permission names them.
 */
export const INTAKE_STREAMS = ["CAPA_INTAKE_0", "CAPA_INTAKE_1"] as const;

/** `capa.v1.intake.<stream index>.<jobId>`: one pending submission (a protobuf Job in its first state). */
export function intakeSubject(stream: number, jobId: string): string {
  return `${SUBJECT_ROOT}.intake.${stream}.${assertToken(jobId, "job id")}`;
}

/** Every subject of intake stream `stream`. */
export function intakeSubjects(stream: number): string {
  return `${SUBJECT_ROOT}.intake.${stream}.*`;
}

const TOKEN = /^[A-Za-z0-9_-]+$/;

/** Ids and regions become subject tokens: no dots, spaces or wildcards. */
export function assertToken(value: string, what: string): string {
  if (!TOKEN.test(value)) throw new Error(`${what} must match ${TOKEN}, got ${JSON.stringify(value)}`);
  return value;
}

export const subjects = {
  advert: (region: string, agentId: string) =>
    `${SUBJECT_ROOT}.agent.${assertToken(region, "region")}.${assertToken(agentId, "agent id")}.advert`,
  heartbeat: (region: string, agentId: string) =>
    `${SUBJECT_ROOT}.agent.${assertToken(region, "region")}.${assertToken(agentId, "agent id")}.heartbeat`,
  /** Request-reply: change the agent's prices at runtime (JSON `{prices, replace?}` → `{ok, prices | error}`). */
  agentPriceControl: (region: string, agentId: string) =>
    `${SUBJECT_ROOT}.agent.${assertToken(region, "region")}.${assertToken(agentId, "agent id")}.control.price`,
  /**
   * Request-reply from the agent's own subtree: copy a checkpoint chunk into, or read one out of, the scheduler's
   * checkpoint store (protobuf CheckpointChunk / CheckpointGet → CheckpointReply). Agents never touch the store.
   */
  checkpointPut: (region: string, agentId: string) => `${subjects.agentRoot(region, agentId)}.checkpoint.put`,
  checkpointGet: (region: string, agentId: string) => `${subjects.agentRoot(region, agentId)}.checkpoint.get`,
  allCheckpointRequests: `${SUBJECT_ROOT}.agent.*.*.checkpoint.*`,
  allAdverts: `${SUBJECT_ROOT}.agent.*.*.advert`,
  allHeartbeats: `${SUBJECT_ROOT}.agent.*.*.heartbeat`,
  /** The agent's own subtree, `capa.v1.agent.<region>.<agentId>` (adverts, heartbeats, control). */
  agentRoot: (region: string, agentId: string) =>
    `${SUBJECT_ROOT}.agent.${assertToken(region, "region")}.${assertToken(agentId, "agent id")}`,
  taskStatus: (taskId: string, agentId: string) => taskSubject(taskId, "status", agentId),
  taskLogs: (taskId: string, agentId: string) => taskSubject(taskId, "logs", agentId),
  taskUsage: (taskId: string, agentId: string) => taskSubject(taskId, "usage", agentId),
  /** One task's reports from whichever agents ran it (filters, not publish subjects). */
  taskStatusAnyAgent: (taskId: string) => `${SUBJECT_ROOT}.task.${assertToken(taskId, "task id")}.status.*`,
  taskLogsAnyAgent: (taskId: string) => `${SUBJECT_ROOT}.task.${assertToken(taskId, "task id")}.logs.*`,
  /** A service replica's readiness (core NATS, protobuf TaskReadiness), under the task's own subjects. */
  taskReady: (taskId: string, agentId: string) => taskSubject(taskId, "ready", agentId),
  allTaskReady: `${SUBJECT_ROOT}.task.*.ready.*`,
  /** A service's retraining trigger (JSON, from the scheduler's drift rule): the training side subscribes. */
  serviceRetrain: (tenant: string, service: string) =>
    `${SUBJECT_ROOT}.service.${assertToken(tenant, "tenant")}.${assertToken(service, "service")}.retrain`,
  /**
   * A gateway load report as the scheduler replica that received it saw it (JSON), so every replica — the leader's
   * autoscaler and any follower answering GetService — holds the same load. Scheduler-only: agents may not publish.
   */
  serviceLoad: (tenant: string, service: string) =>
    `${SUBJECT_ROOT}.service.${assertToken(tenant, "tenant")}.${assertToken(service, "service")}.load`,
  allServiceLoad: `${SUBJECT_ROOT}.service.*.*.load`,
  allTaskStatus: `${SUBJECT_ROOT}.task.*.status.*`,
  allTaskUsage: `${SUBJECT_ROOT}.task.*.usage.*`,
  allTaskLogs: `${SUBJECT_ROOT}.task.*.logs.*`,
  /** Every task subject: the single subject of CAPA_TASKS before logs moved to CAPA_LOGS (see `ensureStore`). */
  allTasks: `${SUBJECT_ROOT}.task.>`,
} as const;

export type TaskSubjectKind = "status" | "logs" | "usage" | "ready";

function taskSubject(taskId: string, kind: TaskSubjectKind, agentId: string): string {
  return `${SUBJECT_ROOT}.task.${assertToken(taskId, "task id")}.${kind}.${assertToken(agentId, "agent id")}`;
}

/** Parses `capa.v1.task.<taskId>.<kind>.<agentId>`; undefined for anything else (the legacy 5-token form too). */
export function parseTaskSubject(subject: string): { taskId: string; kind: string; agentId: string } | undefined {
  const parts = subject.split(".");
  if (parts.length !== 6 || parts[0] !== "capa" || parts[1] !== "v1" || parts[2] !== "task") return undefined;
  return { taskId: parts[3]!, kind: parts[4]!, agentId: parts[5]! };
}

/** Parses `capa.v1.agent.<region>.<agentId>.<kind>`; undefined for anything else. */
export function parseAgentSubject(subject: string): { region: string; agentId: string; kind: string } | undefined {
  const parts = subject.split(".");
  if (parts.length < 6 || parts[0] !== "capa" || parts[1] !== "v1" || parts[2] !== "agent") return undefined;
  return { region: parts[3]!, agentId: parts[4]!, kind: parts.slice(5).join(".") };
}

/** Where a KV key's messages live: `$KV.<bucket>.<key>` (the subject nats-server permissions see). */
export function kvKeySubject(bucket: string, key: string): string {
  return `$KV.${bucket}.${key}`;
}

/** The JetStream stream behind a KV bucket. */
export function kvStreamName(bucket: string): string {
  return `KV_${bucket}`;
}

/** The inbox prefix a client uses so its replies land under a subject only it may subscribe to. */
export function inboxPrefixFor(agentId: string): string {
  return `_INBOX_${assertToken(agentId, "agent id")}`;
}
