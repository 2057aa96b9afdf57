/**
 * Which job a request id has, from what its registers hold (pure; the table test is tally.test.ts).
 *
 * Each register is a create-only KV key in its own Raft group. A record is the request's once a majority of the
 * registers hold it: two majorities of one set always share a register, and a register holds one record, so two
 * claimants can never both see their own record decided. When every register is known and none has a majority
 * (three concurrent claimants won one register each), the record with the smallest job id is the request's: every
 * claimant that sees all three computes the same answer, and the registers no longer change. Anything short of
 * that (a split with a register not known yet) is undecided: the claimant waits for that register.
 * (A store from before the quorum has its records copied into the new registers before any claim is made:
 * migrateRequestRegisters in @capa/bus.)
 */
import type { RequestRecord } from "../store/records.js";

/** What a claimant knows of each register: the record it holds, or undefined while not known. */
export type RegisterView = RequestRecord | undefined;

export function majorityOf(registers: number): number {
  return Math.floor(registers / 2) + 1;
}

/** The request's record, or undefined while it is not decided yet. */
export function decideRequest(views: readonly RegisterView[]): RequestRecord | undefined {
  const counts = new Map<string, { record: RequestRecord; n: number }>();
  for (const v of views) {
    if (!v) continue;
    const c = counts.get(v.jobId);
    if (c) c.n++;
    else counts.set(v.jobId, { record: v, n: 1 });
  }
  const need = majorityOf(views.length);
  for (const c of counts.values()) if (c.n >= need) return c.record;
  if (views.some((v) => v === undefined)) return undefined;
  // Every register known, no majority: one record each. The smallest job id, as every claimant computes it.
  let best: RequestRecord | undefined;
  for (const c of counts.values()) if (!best || c.record.jobId < best.jobId) best = c.record;
  return best;
}
