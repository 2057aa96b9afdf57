/**
 * Every NATS subject, bucket and stream name capa uses, in one file. The subject tree mirrors the
 * security model: an agent publishes only under its own `agent.<region>.<agentId>` and `task.<taskId>`.
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
} as const;

export const STREAMS = {
  /** Task status and usage from agents (`capa.v1.task.*.status`, `capa.v1.task.*.usage`): state and billing. */
  tasks: "CAPA_TASKS",
  /** Task logs from agents (`capa.v1.task.*.logs`), kept apart so a noisy task never evicts status or usage. */
  logs: "CAPA_LOGS",
} as const;

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
  allAdverts: `${SUBJECT_ROOT}.agent.*.*.advert`,
  allHeartbeats: `${SUBJECT_ROOT}.agent.*.*.heartbeat`,
  taskStatus: (taskId: string) => `${SUBJECT_ROOT}.task.${assertToken(taskId, "task id")}.status`,
  taskLogs: (taskId: string) => `${SUBJECT_ROOT}.task.${assertToken(taskId, "task id")}.logs`,
  taskUsage: (taskId: string) => `${SUBJECT_ROOT}.task.${assertToken(taskId, "task id")}.usage`,
  /** A service replica's readiness (core NATS, protobuf TaskReadiness), under the task's own subjects. */
  taskReady: (taskId: string) => `${SUBJECT_ROOT}.task.${assertToken(taskId, "task id")}.ready`,
  allTaskReady: `${SUBJECT_ROOT}.task.*.ready`,
  allTaskStatus: `${SUBJECT_ROOT}.task.*.status`,
  allTaskUsage: `${SUBJECT_ROOT}.task.*.usage`,
  allTaskLogs: `${SUBJECT_ROOT}.task.*.logs`,
  /** Every task subject: the single subject of CAPA_TASKS before logs moved to CAPA_LOGS (see `ensureStore`). */
  allTasks: `${SUBJECT_ROOT}.task.>`,
} as const;

/** Parses `capa.v1.task.<taskId>.<kind>`; undefined for anything else. */
export function parseTaskSubject(subject: string): { taskId: string; kind: string } | undefined {
  const parts = subject.split(".");
  if (parts.length !== 5 || parts[0] !== "capa" || parts[1] !== "v1" || parts[2] !== "task") return undefined;
  return { taskId: parts[3]!, kind: parts[4]! };
}
