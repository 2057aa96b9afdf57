/**
 * Task status, usage and log messages as they go on the wire. msgIDs are derived from (task, epoch, what), never
 * from time, so a retry — or a re-publish after an agent restart — is deduplicated by the CAPA_TASKS stream.
 */
import { encode, subjects } from "@capa/bus";
import type { Checkpoint, LogChunk, TaskState, TaskStatusReport, UsageReport } from "@capa/domain";
import type { Outbox } from "./outbox.js";

export interface TaskRef {
  taskId: string;
  jobId: string;
  epoch: number;
}

export interface StatusDetails {
  exitCode?: number;
  signal?: string;
  startedAtMs?: number;
  finishedAtMs?: number;
  message?: string;
  /** When the task last signalled a checkpoint (mtime of `$CAPA_CHECKPOINT_FILE`); 0 = none this run. */
  lastCheckpointMs?: number;
  /** The newest complete checkpoint in `$CAPA_CHECKPOINT_DIR`. */
  checkpoint?: Checkpoint;
  imageDigest?: string;
  resumedFrom?: Checkpoint;
  resumeNote?: string;
}

/** A running task re-reports "running" per checkpoint: those reports carry the checkpoint time in their msgID. */
export const statusMsgId = (t: TaskRef, state: TaskState, checkpointMs = 0) =>
  state === "running" && checkpointMs > 0
    ? `${t.taskId}.${t.epoch}.running.ckpt.${checkpointMs}`
    : `${t.taskId}.${t.epoch}.${state}`;
export const usageMsgId = (t: TaskRef, sequence: number) => `${t.taskId}.${t.epoch}.usage.${sequence}`;
export const logMsgId = (t: TaskRef, seq: number) => `${t.taskId}.${t.epoch}.log.${seq}`;

/** gpus × elapsed ms, cumulative from the task's start. */
export function usageReport(
  t: TaskRef & { agentId: string; gpus: number; startedAtMs: number; lastCheckpointMs?: number },
  untilMs: number,
  sequence: number,
  final: boolean,
): UsageReport {
  const elapsed = Math.max(0, untilMs - t.startedAtMs);
  return {
    ...(t.lastCheckpointMs ? { lastCheckpointMs: t.lastCheckpointMs } : {}),
    taskId: t.taskId,
    jobId: t.jobId,
    agentId: t.agentId,
    epoch: t.epoch,
    startedAtMs: t.startedAtMs,
    untilMs,
    gpus: t.gpus,
    gpuMilliseconds: t.gpus * elapsed,
    final,
    sequence,
  };
}

export class Reporter {
  constructor(
    private readonly outbox: Outbox,
    private readonly agent: { agentId: string; bootId: string },
    private readonly now: () => number = Date.now,
  ) {}

  status(t: TaskRef, state: TaskState, details: StatusDetails = {}): TaskStatusReport {
    const report: TaskStatusReport = {
      taskId: t.taskId,
      jobId: t.jobId,
      agentId: this.agent.agentId,
      epoch: t.epoch,
      state,
      exitCode: details.exitCode ?? 0,
      signal: details.signal ?? "",
      startedAtMs: details.startedAtMs ?? 0,
      finishedAtMs: details.finishedAtMs ?? 0,
      message: details.message ?? "",
      sentAtMs: this.now(),
      bootId: this.agent.bootId,
      ...(details.lastCheckpointMs ? { lastCheckpointMs: details.lastCheckpointMs } : {}),
      ...(details.checkpoint && { checkpoint: details.checkpoint }),
      ...(details.imageDigest && { imageDigest: details.imageDigest }),
      ...(details.resumedFrom && { resumedFrom: details.resumedFrom }),
      ...(details.resumeNote && { resumeNote: details.resumeNote }),
    };
    this.send(report);
    return report;
  }

  /** Sends a report again, same msgID: a no-op for the stream inside its duplicate window. */
  send(report: TaskStatusReport): void {
    this.outbox.enqueue(report.taskId, {
      subject: subjects.taskStatus(report.taskId, this.agent.agentId),
      data: encode.status({ ...report, sentAtMs: this.now() }),
      msgID: statusMsgId(report, report.state, report.lastCheckpointMs),
      kind: "status",
    });
  }

  usage(report: UsageReport): void {
    this.outbox.enqueue(report.taskId, {
      subject: subjects.taskUsage(report.taskId, this.agent.agentId),
      data: encode.usage(report),
      msgID: usageMsgId(report, report.sequence),
      kind: "usage",
    });
  }

  /** False when the task's log backlog is full (the shipper counts the bytes as dropped). */
  log(epoch: number, chunk: LogChunk): boolean {
    return this.outbox.enqueue(chunk.taskId, {
      subject: subjects.taskLogs(chunk.taskId, this.agent.agentId),
      data: encode.log(chunk),
      msgID: logMsgId({ ...chunk, epoch }, chunk.seq),
      kind: "log",
    });
  }
}
