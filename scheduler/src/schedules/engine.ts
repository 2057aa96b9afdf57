/**
 * The schedule engine, pure (the clock and the job states are parameters): one round for one schedule turns
 * what is due — queued triggers first, then the cron if its fire time has come — into runs under the concurrency
 * policy, and says which jobs to submit and which to cancel. The controller commits the new record with CAS and
 * only then performs those side effects (each idempotent), so a lost CAS or a crash repeats nothing.
 *
 * Missed fires (the leader was down across several fire times) collapse into one run, as Kubernetes CronJobs do
 * with a starting deadline: the next fire time is always computed from now, never replayed one by one.
 */
import { isFinalJobState, type JobState, nextFireAfter } from "@capa/domain";
import type { RunRecord, ScheduleRecord } from "./model.js";

export interface RoundResult {
  next: ScheduleRecord;
  /** Runs whose job is to be submitted now (started, no job id yet). */
  submit: RunRecord[];
  /** Runs whose job is to be cancelled (replaced, not final yet). */
  cancel: RunRecord[];
}

/** A run still holds its slot: started and its job not final (or not submitted yet). */
export function isActive(run: RunRecord): boolean {
  return run.outcome === "started" && (run.jobId === "" || (run.jobState !== "" && !isFinalJobState(run.jobState)));
}

/**
 * @param jobState the state of a run's job now; undefined when the scheduler does not know the job.
 */
export function scheduleRound(
  rec: ScheduleRecord,
  nowMs: number,
  jobState: (jobId: string) => JobState | undefined,
): RoundResult {
  const next = structuredClone(rec);
  const { spec } = next;
  for (const run of next.runs) {
    if (run.jobId === "") continue;
    // Unknown (not in this replica's view): the last observed state stands; the leader sees every transition.
    run.jobState = jobState(run.jobId) ?? run.jobState;
  }

  const due: Omit<RunRecord, "runId" | "outcome" | "startedAtMs" | "replacedRunId" | "cancelRequested" | "jobId">[] =
    next.pending.map((t) => ({
      cause: "trigger",
      triggerId: t.triggerId,
      reason: t.reason,
      dueAtMs: t.atMs,
      jobState: "",
    }));
  next.pending = [];
  if (spec.cron !== "") {
    if (next.nextFireAtMs > 0 && next.nextFireAtMs <= nowMs && !spec.suspend) {
      due.push({
        cause: "cron",
        triggerId: `cron-${next.nextFireAtMs}`,
        reason: `cron ${spec.cron}${spec.timezone ? ` (${spec.timezone})` : ""}`,
        dueAtMs: next.nextFireAtMs,
        jobState: "",
      });
      next.lastFireAtMs = nowMs;
    }
    // From now on: missed fire times are not replayed; a suspended schedule's time moves on without firing.
    if (next.nextFireAtMs <= nowMs) next.nextFireAtMs = nextFireAfter(spec.cron, spec.timezone, nowMs) ?? 0;
  } else next.nextFireAtMs = 0;

  const submit: RunRecord[] = [];
  for (const d of due) {
    const active = next.runs.filter(isActive);
    const runId = `${next.name}-${next.nextSeq++}`;
    const base = { ...d, runId, startedAtMs: nowMs, jobId: "", replacedRunId: "", cancelRequested: false };
    if (spec.concurrency === "forbid" && active.length > 0) {
      next.runs.unshift({
        ...base,
        outcome: "skipped",
        reason: `${d.reason}; skipped: run ${active.map((r) => r.runId).join(", ")} still active (concurrency forbid)`,
      });
      continue;
    }
    const run: RunRecord = { ...base, outcome: "started" };
    if (spec.concurrency === "replace" && active.length > 0) {
      for (const old of active) old.cancelRequested = true;
      run.replacedRunId = active.map((r) => r.runId).join(",");
    }
    next.runs.unshift(run);
    submit.push(run);
  }
  // Runs without a job yet (a submission that failed or a crash before it) are submitted again.
  for (const run of next.runs)
    if (run.outcome === "started" && run.jobId === "" && !submit.includes(run)) submit.push(run);

  next.runs = trimHistory(next.runs, spec.historyLimit);
  const cancel = next.runs.filter((r) => r.cancelRequested && r.jobId !== "" && isActive(r));
  return { next, submit, cancel };
}

/** The newest `limit` runs, plus any older run still active (its job must stay tracked until it ends). */
export function trimHistory(runs: RunRecord[], limit: number): RunRecord[] {
  return runs.filter((run, i) => i < limit || isActive(run));
}
