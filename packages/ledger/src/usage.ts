/**
 * From usage reports to the ledger: the two calls the scheduler's metering needs.
 *
 * Usage reports travel on `capa.v1.task.<taskId>.usage.<agentId>` (only that agent's NATS user may publish there)
 * and are kept in the CAPA_TASKS stream, so the
 * scheduler holds no usage state of its own: when an allocation ends it reads the task's reports back
 * (`readUsageReports`), meters them against its own observed window and records the settlement
 * (`settleAllocation`). Reports are cumulative and metering takes their maximum, and the settlement is
 * stored once per (task, epoch), so a restarted scheduler that replays everything bills nothing twice.
 */
import { decode, STREAMS, subjects } from "@capa/bus";
import { CapaError, type UsageReport } from "@capa/domain";
import { type MeteredAllocation, type MeterOptions, type MeterResult, meter } from "@capa/market";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { Ledger, SettlementRecord } from "./ledger.js";
import { readSubject } from "./stream-io.js";

/**
 * Every usage report the allocation's agent published for the task, oldest first (replays and duplicates included).
 * Reports on another agent's subject are never read: only the agent that held the task can move its bill.
 */
export async function readUsageReports(
  _js: JetStreamClient,
  jsm: JetStreamManager,
  taskId: string,
  agentId: string,
): Promise<UsageReport[]> {
  // One exact subject: direct reads, no consumer per allocation (settlement reads one subject per allocation).
  return (await readSubject(jsm, STREAMS.tasks, subjects.taskUsage(taskId, agentId))).map(decode.usage);
}

/** An allocation that has ended, with what the ledger and the receipt need besides the metering window. */
export interface FinishedAllocation extends MeteredAllocation {
  tenant: string;
  provider: string;
  region: string;
  gpuModel: string;
  gpuIndices: number[];
  interruptible: boolean;
  endReason: string;
}

/** Settling needs the scheduler's observed end; a running allocation is metered, not settled. */
export class AllocationNotFinishedError extends CapaError {
  readonly code = "FAILED_PRECONDITION";
}

export async function settleAllocation(
  ledger: Ledger,
  allocation: FinishedAllocation,
  reports: readonly UsageReport[],
  nowMs: number,
  options: MeterOptions = {},
): Promise<{ metered: MeterResult; record: SettlementRecord }> {
  if (allocation.observedEndMs <= 0) {
    throw new AllocationNotFinishedError(`allocation ${allocation.taskId}/${allocation.epoch} has not ended`);
  }
  const metered = meter(allocation, reports, nowMs, options);
  // An allocation that never ran still gets a (zero) settlement and receipt, dated when it ended.
  const started = metered.basis !== "not-started";
  const record = await ledger.recordSettlement({
    tenant: allocation.tenant,
    jobId: allocation.jobId,
    taskId: allocation.taskId,
    epoch: allocation.epoch,
    agentId: allocation.agentId,
    provider: allocation.provider,
    region: allocation.region,
    gpuModel: allocation.gpuModel,
    gpuIndices: allocation.gpuIndices,
    pricePerGpuHour: allocation.pricePerGpuHour,
    startMs: started ? metered.startMs : allocation.observedEndMs,
    endMs: started ? metered.endMs : allocation.observedEndMs,
    gpuMilliseconds: metered.billableGpuMs,
    interruptible: allocation.interruptible,
    endReason: allocation.endReason,
  });
  return { metered, record };
}
