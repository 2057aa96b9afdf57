/**
 * Billing after every fault: each allocation the watcher saw (task, epoch) whose job is final must be settled
 * with exactly one charge in `CAPA_LEDGER`, and that charge must equal its GPU time at its locked price:
 * gpu-ms = GPUs × (end − start) of the charged window, amount = costForGpuMillis(price, gpu-ms), and the price
 * is the one the assignment carried; and no charge names an allocation no assignment ever held. Read straight
 * from the ledger stream, not through the scheduler.
 */
import { costForGpuMillis } from "@capa/domain";
import { decodeLedgerEntry, LEDGER_STREAM, readStream } from "@capa/ledger";
import { waitFor } from "@capa/testkit";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { SeenAllocation } from "./allocations.js";

export interface BillingReport {
  allocations: number;
  charged: number;
  mismatches: string[];
  /** Charges for allocations the watcher missed (only when it missed revisions). */
  unverified: number;
  /** Uncharged allocations of jobs that are not final. */
  notEnded: number;
}

async function charges(nc: NatsConnection) {
  const raw = await readStream(jetstream(nc), await jetstreamManager(nc), LEDGER_STREAM, "capa.v1.ledger.charge.>");
  return raw.map(decodeLedgerEntry);
}

export async function checkBilling(
  nc: NatsConnection,
  allocations: Iterable<SeenAllocation>,
  settleTimeoutMs: number,
  /** Revisions the allocation watcher never saw: a charge for an allocation it missed cannot be judged. */
  watcherMissed = 0,
  /**
   * Whether a job is final. An uncharged allocation of a job that never finished is not judged here (it has not
   * ended; the fault's "acked jobs not finished" figure counts it).
   */
  jobFinal: (jobId: string) => Promise<boolean> = async () => true,
): Promise<BillingReport> {
  const expected = [...allocations];
  const byKey = (taskId: string, epoch: number) => `${taskId}/${epoch}`;
  // Settlement runs on the leader after each allocation ends: wait until every one has its charge.
  let entries = await charges(nc);
  await waitFor(
    async () => {
      entries = await charges(nc);
      const seen = new Set(entries.map((e) => byKey(e.taskId, e.epoch)));
      return expected.every((a) => seen.has(byKey(a.taskId, a.epoch)));
    },
    { timeoutMs: settleTimeoutMs, intervalMs: 1_000, what: "every allocation settled" },
  ).catch(() => undefined); // the ones still missing are reported below
  const counts = new Map<string, typeof entries>();
  for (const e of entries) {
    const k = byKey(e.taskId, e.epoch);
    counts.set(k, [...(counts.get(k) ?? []), e]);
  }
  const mismatches: string[] = [];
  // A charge for an allocation no assignment ever named is billing something that never ran.
  const assigned = new Set(expected.map((a) => byKey(a.taskId, a.epoch)));
  let unverified = 0;
  let notEnded = 0;
  for (const k of counts.keys())
    if (assigned.has(k)) continue;
    else if (watcherMissed > 0) unverified++;
    else mismatches.push(`${k}: charged, never assigned`);
  for (const a of expected) {
    const k = byKey(a.taskId, a.epoch);
    const found = counts.get(k) ?? [];
    if (found.length === 0 && !(await jobFinal(a.jobId))) {
      notEnded++;
      continue;
    }
    if (found.length !== 1) {
      mismatches.push(`${k}: ${found.length} charges`);
      continue;
    }
    const c = found[0]!;
    const gpuMs = c.gpuIndices.length * Math.max(0, c.endMs - c.startMs);
    if (c.gpuIndices.length !== a.gpus) mismatches.push(`${k}: charged ${c.gpuIndices.length} GPUs, held ${a.gpus}`);
    if (c.gpuMilliseconds !== gpuMs)
      mismatches.push(`${k}: ${c.gpuMilliseconds} gpu-ms charged for a ${gpuMs} gpu-ms window`);
    if (c.pricePerGpuHour !== a.pricePerGpuHour)
      mismatches.push(`${k}: charged at ${c.pricePerGpuHour}/GPU-h, locked at ${a.pricePerGpuHour}`);
    if (c.amount !== costForGpuMillis(c.pricePerGpuHour, c.gpuMilliseconds))
      mismatches.push(`${k}: amount ${c.amount} ≠ ${costForGpuMillis(c.pricePerGpuHour, c.gpuMilliseconds)}`);
  }
  return { allocations: expected.length, charged: counts.size, mismatches, unverified, notEnded };
}
