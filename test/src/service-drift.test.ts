/**
 * Drift monitoring end to end: the Node model server prints `CAPA_METRICS {"drift_score": …}` lines on stdout, its
 * agent (`capa agent` child process) forwards them with its readiness reports, the scheduler exposes them as
 * Prometheus gauges and, once the score is over the service's threshold, fires the retraining trigger on
 * `capa.v1.service.<tenant>.<service>.retrain` exactly once for the revision, however long the score stays high.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { subjects } from "@capa/bus";
import { waitFor } from "@capa/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertCliBuilt } from "./cli-harness.js";
import type { Harness } from "./scheduler-harness.js";
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

  it("fires the trigger once when drift_score crosses its threshold", async () => {
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
    expect(svc.replicas[0]?.modelMetrics.drift_score).toBe(0.9);
    console.log(`[drift] ${svc.events.find((e) => e.kind === "drift")?.reason}`);
  }, 120_000);
});
