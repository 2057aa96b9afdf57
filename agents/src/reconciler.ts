/**
 * Level-triggered reconcile, as a pure function: desired state (the agent's KV assignment value) versus what the
 * agent runs and remembers → the actions that close the gap. It is re-run on every change and on a timer, so it must
 * be idempotent: running it twice on the same input yields the same actions, and an action already in progress
 * (a task that is stopping) produces nothing new.
 */
import type { GpuHealth, TaskAssignment, TaskState } from "@capa/domain";

export interface RunningTaskView {
  taskId: string;
  epoch: number;
  gpuIndices: readonly number[];
  /** A stop is already in progress (SIGTERM sent). */
  stopping: boolean;
}

/** A task this agent has finished (or refused) and still remembers, so it is not run twice. */
export interface FinishedTaskView {
  taskId: string;
  epoch: number;
  state: TaskState;
}

export interface AgentGpuView {
  index: number;
  health: GpuHealth;
}

export interface ReconcileInput {
  desired: readonly TaskAssignment[];
  running: readonly RunningTaskView[];
  finished: readonly FinishedTaskView[];
  gpus: readonly AgentGpuView[];
}

export type ReconcileAction =
  | { type: "start"; assignment: TaskAssignment }
  | { type: "stop"; taskId: string; epoch: number; reason: string }
  | { type: "reject"; assignment: TaskAssignment; message: string }
  /** Stop requested for a task this agent never started: report it cancelled so the scheduler converges. */
  | { type: "cancel-unstarted"; assignment: TaskAssignment; message: string }
  /** Final state already reached but still listed: publish it again (the scheduler may have missed it). */
  | { type: "republish"; taskId: string; epoch: number }
  /** No longer listed: drop the finished record. */
  | { type: "forget"; taskId: string }
  /** Its GPUs are still held by a task that is stopping; started by a later reconcile. */
  | { type: "wait"; taskId: string; reason: string };

/** One entry per task id; a duplicate keeps the highest epoch (and, at equal epochs, a stop wins). */
function dedupe(desired: readonly TaskAssignment[]): TaskAssignment[] {
  const byId = new Map<string, TaskAssignment>();
  for (const d of desired) {
    const prev = byId.get(d.taskId);
    if (!prev || d.epoch > prev.epoch || (d.epoch === prev.epoch && d.stop && !prev.stop)) byId.set(d.taskId, d);
  }
  return desired.filter((d) => byId.get(d.taskId) === d);
}

function list(indices: Iterable<number>): string {
  return [...indices].join(",");
}

export function reconcile(input: ReconcileInput): ReconcileAction[] {
  const actions: ReconcileAction[] = [];
  const desired = dedupe(input.desired);
  const desiredById = new Map(desired.map((d) => [d.taskId, d]));
  const finishedById = new Map(input.finished.map((f) => [f.taskId, f]));
  const runningById = new Map(input.running.map((r) => [r.taskId, r]));

  // GPU owners: kept = running and still wanted; draining = running but on its way out (freed soon).
  const kept = new Map<number, string>();
  const draining = new Map<number, string>();

  for (const r of input.running) {
    const d = desiredById.get(r.taskId);
    const keep = d !== undefined && !d.stop && d.epoch === r.epoch;
    if (keep) {
      for (const i of r.gpuIndices) kept.set(i, r.taskId);
      continue;
    }
    for (const i of r.gpuIndices) draining.set(i, r.taskId);
    if (r.stopping) continue;
    let reason: string;
    if (!d) reason = "no longer assigned to this agent";
    else if (d.stop) reason = d.stopReason || "stop requested";
    else if (d.epoch > r.epoch) reason = `superseded by epoch ${d.epoch}`;
    else reason = `desired state lists an older epoch ${d.epoch}`;
    actions.push({ type: "stop", taskId: r.taskId, epoch: r.epoch, reason });
  }

  const byIndex = new Map(input.gpus.map((g) => [g.index, g]));
  const healthy = input.gpus.filter((g) => g.health !== "failed").length;

  for (const d of desired) {
    const running = runningById.get(d.taskId);
    if (running) {
      if (running.epoch < d.epoch && !d.stop) {
        actions.push({ type: "wait", taskId: d.taskId, reason: `epoch ${running.epoch} is still stopping` });
      }
      continue;
    }
    const finished = finishedById.get(d.taskId);
    if (finished && finished.epoch === d.epoch) {
      actions.push({ type: "republish", taskId: d.taskId, epoch: d.epoch });
      continue;
    }
    // An older epoch than one already finished here is a stale assignment: never run it.
    if (finished && finished.epoch > d.epoch) continue;
    if (d.stop) {
      actions.push({ type: "cancel-unstarted", assignment: d, message: d.stopReason || "stopped before it started" });
      continue;
    }
    const verdict = admit(d, byIndex, healthy, kept, draining);
    if (verdict.type === "start") for (const i of d.gpuIndices) kept.set(i, d.taskId);
    actions.push(verdict);
  }

  for (const f of input.finished) {
    if (!desiredById.has(f.taskId)) actions.push({ type: "forget", taskId: f.taskId });
  }
  return actions;
}

/** Refuses assignments this agent cannot honour; waits when only stopping tasks are in the way. */
function admit(
  d: TaskAssignment,
  gpus: ReadonlyMap<number, AgentGpuView>,
  healthy: number,
  kept: ReadonlyMap<number, string>,
  draining: ReadonlyMap<number, string>,
): ReconcileAction {
  const reject = (message: string): ReconcileAction => ({ type: "reject", assignment: d, message });
  if (d.template.command.length === 0 || !d.template.command[0]) return reject("empty command");
  const wanted = d.gpuIndices;
  if (wanted.length > gpus.size) return reject(`needs ${wanted.length} GPUs; this agent has ${gpus.size}`);
  const unknown = wanted.filter((i) => !gpus.has(i));
  if (unknown.length > 0) {
    return reject(`GPU index ${list(unknown)} does not exist on this agent (it has ${list([...gpus.keys()])})`);
  }
  const dup = wanted.find((i, n) => wanted.indexOf(i) !== n);
  if (dup !== undefined) return reject(`GPU index ${dup} is listed twice`);
  const failed = wanted.filter((i) => gpus.get(i)?.health === "failed");
  if (failed.length > 0) return reject(`GPU ${list(failed)} is failed`);
  // Draining GPUs count as free: they are released as soon as their task exits.
  const free = healthy - [...kept.keys()].filter((i) => gpus.get(i)?.health !== "failed").length;
  if (wanted.length > free) return reject(`needs ${wanted.length} GPUs but only ${free} are free`);
  const busy = wanted.filter((i) => kept.has(i));
  if (busy.length > 0) {
    const owners = [...new Set(busy.map((i) => kept.get(i)))].join(",");
    return reject(`GPU ${list(busy)} already in use by task ${owners}`);
  }
  const blocked = wanted.filter((i) => draining.has(i));
  if (blocked.length > 0) {
    const owners = [...new Set(blocked.map((i) => draining.get(i)))].join(",");
    return { type: "wait", taskId: d.taskId, reason: `GPU ${list(blocked)} held by stopping task ${owners}` };
  }
  return { type: "start", assignment: d };
}
