/**
 * Drift monitoring end to end: the Node model server prints `CAPA_METRICS {"drift_score": …}` lines on stdout, its
 * agent (`capa agent` child process) forwards them with its readiness reports, the scheduler exposes them as
 * Prometheus gauges and, once the score is over the service's threshold, fires the retraining trigger on
 * `capa.v1.service.<tenant>.<service>.retrain` exactly once for the revision, however long the score stays high.
 * The policy's trigger names a Schedule of the tenant: the trigger starts exactly one run of it (a real job the
 * agent runs to success), whatever the number of controller rounds that see the high score.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import * as pb from "@capa/api";
import { subjects } from "@capa/bus";
import { waitFor } from "@capa/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertCliBuilt } from "./cli-harness.js";
import { finalJob, type Harness, rpc, spec, stateName } from "./scheduler-harness.js";
import { applyService, endpoints, getService, serviceSpec, startServiceFixture, TENANT } from "./service-harness.js";

describe("service drift: model metrics as Prometheus gauges, one retraining trigger", () => {
  let fx: Awaited<ReturnType<typeof startServiceFixture>>;
  let h: Harness;

  beforeAll(async () => {
    assertCliBuilt();
    fx = await startServiceFixture("drift", [["dr-eu-1", "eu-west", "2.00", "2xH100-80GB"]], { metricsPort: 0 });
    ({ h } = fx);
  }, 120_000);

  afterAll(async () => {
    await fx?.stop();
  }, 120_000);

  const metricsText = async () => {
    const res = await fetch(`http://${h.scheduler.metricsAddress}/metrics`);
    return res.text();
  };

  const schedule = async () =>
    (await rpc<pb.GetScheduleResponse>((cb) => h.schedules.getSchedule({ tenant: TENANT, name: "retrain-fraud" }, cb)))
      .schedule!;

  it("A drift score over its threshold fires the retraining trigger once: one run of the named schedule", async () => {
    // The retraining schedule the drift policy names: trigger only, one run at a time.
    await rpc((cb) =>
      h.schedules.applySchedule(
        {
          tenant: TENANT,
          spec: pb.ScheduleSpec.fromPartial({
            name: "retrain-fraud",
            concurrencyPolicy: pb.ConcurrencyPolicy.CONCURRENCY_POLICY_FORBID,
            job: spec({ gpusPerReplica: 0 }, [process.execPath, "-e", "console.log('retrained fraud-v8')"]),
          }),
        },
        cb,
      ),
    );
    const driftFile = join(fx.root, "drift");
    writeFileSync(driftFile, "0.1");
    const triggers: unknown[] = [];
    const sub = h.nc.subscribe(subjects.serviceRetrain(TENANT, "echo"), {
      callback: (_err, msg) => {
        triggers.push(msg.json());
      },
    });
    await applyService(
      h,
      serviceSpec(fx.model, {
        template: {
          command: [process.execPath, fx.model],
          env: { MODEL_DRIFT_FILE: driftFile },
          workingDir: "",
          killGraceSeconds: 2,
          image: "",
          secretEnvNames: [],
        },
        regions: [{ region: "eu-west", minReplicas: 1, maxReplicas: 1, demand: 0 }],
        modelVersion: "fraud-v7",
        drift: { metric: "drift_score", threshold: 0.5, trigger: "retrain-fraud" },
      }),
    );
    const [ep] = await waitFor(
      async () => {
        const eps = await endpoints(h, "echo");
        return eps.length === 1 && eps;
      },
      { timeoutMs: 60_000, intervalMs: 200, what: "a ready replica" },
    );
    const series = `capa_service_model_metric{tenant="${TENANT}",service="echo",region="eu-west",revision="1",task="${ep!.taskId}",metric="drift_score"}`;
    await waitFor(async () => (await metricsText()).includes(`${series} 0.1`), {
      timeoutMs: 20_000,
      intervalMs: 200,
      what: "the drift score as a Prometheus gauge",
    });
    expect(triggers).toHaveLength(0);
    expect((await schedule()).runs).toEqual([]);

    writeFileSync(driftFile, "0.9");
    await waitFor(() => triggers.length > 0, { timeoutMs: 20_000, intervalMs: 100, what: "the retraining trigger" });
    // The score stays high for many more reports and controller rounds: still one trigger.
    await new Promise((r) => setTimeout(r, 3_000));
    sub.unsubscribe();
    expect(triggers).toHaveLength(1);
    expect(triggers[0]).toMatchObject({
      tenant: TENANT,
      service: "echo",
      revision: 1,
      modelVersion: "fraud-v7",
      metric: "drift_score",
      value: 0.9,
      threshold: 0.5,
      trigger: "retrain-fraud",
      taskId: ep!.taskId,
      region: "eu-west",
    });
    const text = await metricsText();
    expect(text).toContain(`${series} 0.9`);
    expect(text).toContain(`capa_service_retrain_triggers_total{tenant="${TENANT}",service="echo"} 1`);
    const svc = await getService(h, "echo");
    expect(svc.events.filter((e) => e.kind === "drift")).toHaveLength(1);
    expect(svc.events.find((e) => e.kind === "drift")?.reason).toContain(
      "schedule retrain-fraud run queued (trigger drift-echo-r1)",
    );
    // Exactly one run of the schedule, started by the drift trigger, and its job ran.
    const runs = await waitFor(
      async () => {
        const r = (await schedule()).runs;
        return r.length > 0 && r[0]!.jobId !== "" && r;
      },
      { timeoutMs: 20_000, intervalMs: 100, what: "the schedule run" },
    );
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({
      cause: pb.ScheduleRunCause.SCHEDULE_RUN_CAUSE_TRIGGER,
      triggerId: "drift-echo-r1",
      outcome: pb.ScheduleRunOutcome.SCHEDULE_RUN_OUTCOME_STARTED,
    });
    expect(runs[0]!.reason).toBe("drift: drift_score 0.9 > 0.5 on service echo revision 1 (eu-west)");
    const job = await finalJob(h, runs[0]!.jobId, 60_000);
    expect(stateName(job.state)).toBe("SUCCEEDED");
    expect(job.spec!.template!.env.CAPA_SCHEDULE_TRIGGER).toBe("drift-echo-r1");
    expect((await schedule()).runs).toHaveLength(1);
    expect(svc.replicas[0]?.modelMetrics.drift_score).toBe(0.9);
    console.log(
      `[drift] ${svc.events.find((e) => e.kind === "drift")?.reason}; schedule runs: ${runs.length} (${runs[0]!.runId}, job ${runs[0]!.jobId} ${stateName(job.state)})`,
    );
  }, 120_000);
});
