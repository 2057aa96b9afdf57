/**
 * Schedules end to end over a real gRPC channel against a real scheduler and nats-server: a schedule fires on its
 * cron at a short real interval (every 2 s, croner's seconds field), starts a run on TriggerSchedule (idempotent by
 * trigger id), and applies its concurrency policy to jobs the scheduler really holds. No agent runs here, so every
 * run's job stays pending (active) until the test cancels it.
 */
import * as pb from "@capa/api";
import { waitFor } from "@capa/testkit";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Clients,
  getJob,
  type Harness,
  rpc,
  rpcError,
  spec,
  startHarness,
  stateName,
} from "./scheduler-harness.js";

const {
  CONCURRENCY_POLICY_ALLOW: ALLOW,
  CONCURRENCY_POLICY_FORBID: FORBID,
  CONCURRENCY_POLICY_REPLACE: REPLACE,
} = pb.ConcurrencyPolicy;
const STARTED = pb.ScheduleRunOutcome.SCHEDULE_RUN_OUTCOME_STARTED;
const SKIPPED = pb.ScheduleRunOutcome.SCHEDULE_RUN_OUTCOME_SKIPPED;

describe("schedules: cron, triggers, concurrency policy, history", () => {
  let h: Harness;
  let acme: Clients;

  beforeAll(async () => {
    h = await startHarness();
    acme = await h.asTenant("acme");
  }, 60_000);

  afterAll(async () => {
    await h?.stop();
  });

  const apply = (s: Partial<pb.ScheduleSpec>) =>
    rpc<pb.ApplyScheduleResponse>((cb) =>
      acme.schedules.applySchedule(
        { tenant: "", spec: pb.ScheduleSpec.fromPartial({ job: spec({ gpusPerReplica: 0 }, ["train"]), ...s }) },
        cb,
      ),
    );
  const get = async (name: string) =>
    (await rpc<pb.GetScheduleResponse>((cb) => acme.schedules.getSchedule({ tenant: "", name }, cb))).schedule!;
  const trigger = (name: string, triggerId = "", reason = "") =>
    rpc<pb.TriggerScheduleResponse>((cb) =>
      acme.schedules.triggerSchedule({ tenant: "", name, triggerId, reason }, cb),
    );
  const startedRuns = async (name: string) =>
    (await get(name)).runs.filter((r) => r.outcome === STARTED && r.jobId !== "");
  const cancel = (jobId: string) =>
    rpc<pb.CancelJobResponse>((cb) => acme.jobs.cancelJob({ jobId, reason: "test" }, cb));

  it("fires on its cron at a real 2 s interval, each run a job carrying its run id", async () => {
    const applied = await apply({ name: "every-2s", cron: "*/2 * * * * *", concurrencyPolicy: ALLOW });
    expect(applied.changed).toBe(true);
    expect(applied.schedule!.nextFireAtMs % 2_000).toBe(0);
    const runs = await waitFor(
      async () => {
        const r = await startedRuns("every-2s");
        return r.length >= 2 && r;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: "two cron runs" },
    );
    // Stop it before asserting, so the run count stops moving.
    await apply({ name: "every-2s", cron: "*/2 * * * * *", concurrencyPolicy: ALLOW, suspend: true });
    const [newer, older] = runs;
    expect(newer!.cause).toBe(pb.ScheduleRunCause.SCHEDULE_RUN_CAUSE_CRON);
    expect(newer!.dueAtMs % 2_000).toBe(0);
    expect(newer!.dueAtMs - older!.dueAtMs).toBeGreaterThanOrEqual(2_000);
    expect(newer!.dueAtMs - older!.dueAtMs).toBe(Math.round((newer!.dueAtMs - older!.dueAtMs) / 2_000) * 2_000);
    expect(newer!.startedAtMs).toBeGreaterThanOrEqual(newer!.dueAtMs);
    const job = await getJob(h, newer!.jobId);
    expect(job.tenant).toBe("acme");
    expect(job.spec!.name).toBe("every-2s");
    expect(job.spec!.template!.env.CAPA_SCHEDULE).toBe("every-2s");
    expect(job.spec!.template!.env.CAPA_SCHEDULE_RUN).toBe(newer!.runId);
    const suspended = await get("every-2s");
    expect(suspended.nextFireAtMs).toBe(0);
    for (const r of suspended.runs) if (r.jobId) await cancel(r.jobId);
    console.log(
      `[schedules] every-2s: ${runs.length} cron runs, due ${runs.map((r) => new Date(r.dueAtMs).toISOString().slice(17, 23)).join(", ")}; started ${runs.map((r) => r.startedAtMs - r.dueAtMs).join(", ")} ms after due`,
    );
  }, 60_000);

  it("a trigger starts a run; forbid skips one while a run is active; the same trigger id is queued once", async () => {
    await apply({ name: "retrain", cron: "", concurrencyPolicy: FORBID, historyLimit: 3 });
    expect((await get("retrain")).nextFireAtMs).toBe(0);
    const first = await trigger("retrain", "drift-42", "drift over threshold");
    expect(first).toEqual({ triggerId: "drift-42", queued: true });
    expect(await trigger("retrain", "drift-42")).toEqual({ triggerId: "drift-42", queued: false });
    const [run] = await waitFor(
      async () => {
        const r = await startedRuns("retrain");
        return r.length === 1 && r;
      },
      { timeoutMs: 20_000, intervalMs: 100, what: "the triggered run" },
    );
    expect(run).toMatchObject({
      cause: pb.ScheduleRunCause.SCHEDULE_RUN_CAUSE_TRIGGER,
      triggerId: "drift-42",
      reason: "drift over threshold",
    });
    expect(stateName((await getJob(h, run!.jobId)).state)).toBe("PENDING");
    // Still pending (no agent): the next trigger is skipped and recorded.
    const second = await trigger("retrain", "", "by hand");
    expect(second.triggerId).toMatch(/^t-/);
    const skipped = await waitFor(
      async () => (await get("retrain")).runs.find((r) => r.triggerId === second.triggerId),
      { timeoutMs: 20_000, intervalMs: 100, what: "the skipped run" },
    );
    expect(skipped.outcome).toBe(SKIPPED);
    expect(skipped.reason).toContain(`run ${run!.runId} still active (concurrency forbid)`);
    expect(skipped.jobId).toBe("");
    // Once the first run's job ended, a trigger starts a run again.
    await cancel(run!.jobId);
    await waitFor(async () => (await get("retrain")).runs[1]?.jobState === pb.JobState.JOB_STATE_CANCELLED, {
      timeoutMs: 20_000,
      what: "the first run's job state observed",
    });
    const third = await trigger("retrain");
    const again = await waitFor(
      async () => (await get("retrain")).runs.find((r) => r.triggerId === third.triggerId && r.jobId !== ""),
      { timeoutMs: 20_000, intervalMs: 100, what: "the run after the first ended" },
    );
    expect(again.outcome).toBe(STARTED);
    await cancel(again.jobId);
    // History is bounded by history_limit (3), newest first.
    const history = (await get("retrain")).runs;
    expect(history.map((r) => r.triggerId)).toEqual([third.triggerId, second.triggerId, "drift-42"]);
  }, 60_000);

  it("replace cancels the active run's job and starts the new one", async () => {
    await apply({ name: "replacer", concurrencyPolicy: REPLACE });
    await trigger("replacer", "one");
    const [first] = await waitFor(
      async () => {
        const r = await startedRuns("replacer");
        return r.length === 1 && r;
      },
      { timeoutMs: 20_000, what: "the first run" },
    );
    await trigger("replacer", "two");
    const second = await waitFor(
      async () => (await get("replacer")).runs.find((r) => r.triggerId === "two" && r.jobId !== ""),
      { timeoutMs: 20_000, what: "the replacing run" },
    );
    expect(second.replacedRunId).toBe(first!.runId);
    await waitFor(async () => (await getJob(h, first!.jobId)).state === pb.JobState.JOB_STATE_CANCELLED, {
      timeoutMs: 20_000,
      what: "the replaced run's job cancelled",
    });
    expect((await getJob(h, second.jobId)).state).toBe(pb.JobState.JOB_STATE_PENDING);
    await cancel(second.jobId);
  }, 60_000);

  it("lists, deletes, and refuses bad input with field paths", async () => {
    const list = await rpc<pb.ListSchedulesResponse>((cb) =>
      acme.schedules.listSchedules({ tenant: "", limit: 0, pageToken: "" }, cb),
    );
    expect(list.schedules.map((s) => s.name)).toEqual(["every-2s", "replacer", "retrain"]);
    const bad = await rpcError((cb) =>
      acme.schedules.applySchedule(
        {
          tenant: "",
          spec: pb.ScheduleSpec.fromPartial({ name: "bad", cron: "61 * * * *", job: spec({}, []) }),
        },
        cb,
      ),
    );
    expect(bad.code).toBe(status.INVALID_ARGUMENT);
    expect(bad.details).toContain("spec.cron: Invalid value for minute: 61");
    expect(bad.details).toContain("spec.job.template.command: must not be empty");
    const noJob = await rpcError((cb) =>
      acme.schedules.applySchedule(
        { tenant: "", spec: pb.ScheduleSpec.fromPartial({ name: "x", cron: "@daily" }) },
        cb,
      ),
    );
    expect(noJob.details).toContain("spec.job: is required");
    expect(
      (
        await rpcError((cb) =>
          acme.schedules.triggerSchedule({ tenant: "", name: "nope", triggerId: "", reason: "" }, cb),
        )
      ).code,
    ).toBe(status.NOT_FOUND);
    await rpc((cb) => acme.schedules.deleteSchedule({ tenant: "", name: "replacer" }, cb));
    expect((await rpcError((cb) => acme.schedules.getSchedule({ tenant: "", name: "replacer" }, cb))).code).toBe(
      status.NOT_FOUND,
    );
  }, 60_000);
});
