import { type ConcurrencyPolicy, defaultJobSpec, type JobState, nextFireAfter } from "@capa/domain";
import { describe, expect, it } from "vitest";
import { isActive, scheduleRound, trimHistory } from "./engine.js";
import type { RunRecord, ScheduleRecord } from "./model.js";

const T0 = Date.parse("2026-12-02T10:00:00Z");
const MIN = 60_000;

function schedule(over: Partial<ScheduleRecord["spec"]> = {}): ScheduleRecord {
  const spec = {
    name: "nightly",
    cron: "*/5 * * * *",
    timezone: "",
    concurrency: "forbid" as ConcurrencyPolicy,
    historyLimit: 5,
    suspend: false,
    job: defaultJobSpec({ template: { command: ["train"], env: {}, workingDir: "", killGraceSeconds: 10 } }),
    ...over,
  };
  return {
    name: spec.name,
    tenant: "acme",
    spec,
    nextFireAtMs: nextFireAfter(spec.cron, spec.timezone, T0) ?? 0,
    lastFireAtMs: 0,
    runs: [],
    pending: [],
    nextSeq: 1,
    createdAtMs: T0,
    updatedAtMs: T0,
  };
}

/** A fake cluster: job states by id, and a clock the test moves. */
class World {
  states = new Map<string, JobState>();
  now = T0;
  jobs = 0;
  /** One round, with the controller's side effects applied the way it would (a job per submitted run). */
  round(rec: ScheduleRecord) {
    const out = scheduleRound(rec, this.now, (id) => this.states.get(id));
    for (const run of out.submit) {
      run.jobId = `job-${++this.jobs}`;
      run.jobState = "pending";
      this.states.set(run.jobId, "running");
    }
    for (const run of out.cancel) this.states.set(run.jobId, "cancelled");
    return out;
  }
}

describe("schedule engine (pure, fake clock)", () => {
  it("fires on the cron, once per fire time, and not before", () => {
    const w = new World();
    let rec = schedule({ concurrency: "allow" });
    expect(rec.nextFireAtMs).toBe(T0 + 5 * MIN);
    w.now = T0 + 5 * MIN - 1;
    let out = w.round(rec);
    expect(out.submit).toHaveLength(0);
    rec = out.next;
    w.now = T0 + 5 * MIN;
    out = w.round(rec);
    expect(out.submit.map((r) => [r.runId, r.cause, r.dueAtMs])).toEqual([["nightly-1", "cron", T0 + 5 * MIN]]);
    rec = out.next;
    expect(rec.nextFireAtMs).toBe(T0 + 10 * MIN);
    // The same instant again (the next tick before the clock moved): nothing more.
    out = w.round(rec);
    expect(out.submit).toHaveLength(0);
    rec = out.next;
    w.now = T0 + 10 * MIN + 1_000;
    out = w.round(rec);
    expect(out.submit.map((r) => r.runId)).toEqual(["nightly-2"]);
    expect(out.next.runs.map((r) => r.runId)).toEqual(["nightly-2", "nightly-1"]);
  });

  it("collapses missed fire times into one run and counts the next from now", () => {
    const w = new World();
    const rec = schedule({ concurrency: "allow" });
    w.now = T0 + 23 * MIN; // the leader was away across 4 fire times
    const out = w.round(rec);
    expect(out.submit).toHaveLength(1);
    expect(out.submit[0]!.dueAtMs).toBe(T0 + 5 * MIN);
    expect(out.next.nextFireAtMs).toBe(T0 + 25 * MIN);
  });

  it("forbid: a due run while one is active is skipped and recorded; it starts again once the run ended", () => {
    const w = new World();
    let rec = schedule({ concurrency: "forbid" });
    w.now = T0 + 5 * MIN;
    rec = w.round(rec).next;
    w.now = T0 + 10 * MIN;
    let out = w.round(rec);
    expect(out.submit).toHaveLength(0);
    expect(out.next.runs[0]).toMatchObject({ runId: "nightly-2", outcome: "skipped" });
    expect(out.next.runs[0]!.reason).toContain("run nightly-1 still active (concurrency forbid)");
    rec = out.next;
    w.states.set("job-1", "succeeded");
    w.now = T0 + 15 * MIN;
    out = w.round(rec);
    expect(out.submit.map((r) => r.runId)).toEqual(["nightly-3"]);
    expect(out.next.runs.find((r) => r.runId === "nightly-1")!.jobState).toBe("succeeded");
  });

  it("replace: the active run's job is cancelled and the new one starts", () => {
    const w = new World();
    let rec = schedule({ concurrency: "replace" });
    w.now = T0 + 5 * MIN;
    rec = w.round(rec).next;
    w.now = T0 + 10 * MIN;
    const out = w.round(rec);
    expect(out.cancel.map((r) => r.jobId)).toEqual(["job-1"]);
    expect(out.submit[0]).toMatchObject({ runId: "nightly-2", replacedRunId: "nightly-1" });
    expect(w.states.get("job-1")).toBe("cancelled");
    // Once cancelled, no further cancel is asked for.
    expect(w.round(out.next).cancel).toEqual([]);
  });

  it("allow: runs overlap", () => {
    const w = new World();
    let rec = schedule({ concurrency: "allow" });
    for (const m of [5, 10, 15]) {
      w.now = T0 + m * MIN;
      rec = w.round(rec).next;
    }
    expect(rec.runs.filter(isActive)).toHaveLength(3);
  });

  it("triggers start runs before the cron, in order, under the same policy", () => {
    const w = new World();
    let rec = schedule({ concurrency: "forbid", cron: "" });
    rec.pending = [
      { triggerId: "drift-chat-r1", reason: "drift", atMs: T0 + 1 },
      { triggerId: "manual-1", reason: "by hand", atMs: T0 + 2 },
    ];
    const out = w.round(rec);
    expect(out.submit.map((r) => [r.triggerId, r.cause])).toEqual([["drift-chat-r1", "trigger"]]);
    expect(out.next.runs[0]).toMatchObject({ triggerId: "manual-1", outcome: "skipped" });
    expect(out.next.pending).toEqual([]);
    expect(out.next.nextFireAtMs).toBe(0);
    rec = out.next;
  });

  it("a suspended schedule does not fire and does not catch up when resumed", () => {
    const w = new World();
    let rec = schedule({ suspend: true });
    w.now = T0 + 12 * MIN;
    let out = w.round(rec);
    expect(out.submit).toEqual([]);
    expect(out.next.nextFireAtMs).toBe(T0 + 15 * MIN);
    rec = out.next;
    rec.spec.suspend = false;
    w.now = T0 + 14 * MIN;
    out = w.round(rec);
    expect(out.submit).toEqual([]);
    w.now = T0 + 15 * MIN;
    expect(w.round(out.next).submit).toHaveLength(1);
    // Triggers still start runs while suspended.
    rec = schedule({ suspend: true });
    rec.pending = [{ triggerId: "t", reason: "", atMs: T0 }];
    expect(w.round(rec).submit).toHaveLength(1);
  });

  it("resubmits a started run that has no job yet (a crash between record and submit)", () => {
    const rec = schedule();
    const run: RunRecord = {
      runId: "nightly-1",
      cause: "cron",
      triggerId: "cron-1",
      reason: "",
      dueAtMs: T0,
      startedAtMs: T0,
      outcome: "started",
      jobId: "",
      jobState: "",
      replacedRunId: "",
      cancelRequested: false,
    };
    rec.runs = [run];
    expect(scheduleRound(rec, T0 + 1, () => undefined).submit.map((r) => r.runId)).toEqual(["nightly-1"]);
  });

  it("keeps the history bounded, but never drops a run that is still active", () => {
    const w = new World();
    let rec = schedule({ concurrency: "allow", historyLimit: 2 });
    for (const m of [5, 10, 15, 20]) {
      w.now = T0 + m * MIN;
      rec = w.round(rec).next;
    }
    expect(rec.runs).toHaveLength(4); // all four still running
    for (const id of ["job-1", "job-2", "job-3"]) w.states.set(id, "succeeded");
    w.now = T0 + 21 * MIN;
    rec = w.round(rec).next;
    expect(rec.runs.map((r) => r.runId)).toEqual(["nightly-4", "nightly-3"]);
    expect(trimHistory([], 3)).toEqual([]);
  });
});
