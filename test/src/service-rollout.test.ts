/**
 * Rollouts end to end: `capa agent` child processes in two regions, the Node model server, an in-process gateway
 * per region under steady loopback load. A new revision whose model answers 500 is canaried in the first region at
 * 10 % of its traffic and rolled back automatically: every failed request went to the canary (the old revision
 * failed none), the canary's replicas are gone and revision 1 serves again. A good revision is then promoted
 * through both regions (canary, then 100 %, region by region) with no failed request. Figures are printed.
 */
import * as pb from "@capa/api";
import { waitFor } from "@capa/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertCliBuilt } from "./cli-harness.js";
import { startLoad } from "./load-gen.js";
import type { Harness } from "./scheduler-harness.js";
import {
  applyService,
  endpoints,
  getService,
  serviceSpec,
  startServiceFixture,
  startTestGateway,
} from "./service-harness.js";

describe("service rollout: canary, automatic rollback, promotion region by region", () => {
  let fx: Awaited<ReturnType<typeof startServiceFixture>>;
  let h: Harness;
  let model: string;

  beforeAll(async () => {
    assertCliBuilt();
    fx = await startServiceFixture("rollout", [
      ["ro-eu-1", "eu-west", "2.00"],
      ["ro-us-1", "us-east", "2.10"],
    ]);
    ({ h, model } = fx);
  }, 120_000);

  afterAll(async () => {
    await fx?.stop();
  }, 120_000);

  const gateway = async (region: string) => {
    const gw = await startTestGateway(h, region, `ro-gw-${region}`);
    fx.gateways.push(gw);
    return gw;
  };

  const revision = (version: string, env: Record<string, string>, pauseMs: number) =>
    serviceSpec(model, {
      template: {
        command: [process.execPath, model],
        env,
        workingDir: "",
        killGraceSeconds: 2,
        image: "",
        secretEnvNames: [],
      },
      regions: [
        { region: "eu-west", minReplicas: 1, maxReplicas: 1, demand: 0 },
        { region: "us-east", minReplicas: 1, maxReplicas: 1, demand: 0 },
      ],
      modelVersion: version,
      rollout: { canaryPercent: 10, steps: [100], pauseMs, maxErrorRate: 0.05, minRequests: 3, readyTimeoutMs: 60_000 },
    });

  it("rolls a failing canary back with failures only on the canary; promotes a good one through all regions", async () => {
    await applyService(h, revision("v1", {}, 2_000));
    await waitFor(async () => (await endpoints(h, "echo")).length === 2, {
      timeoutMs: 60_000,
      intervalMs: 200,
      what: "revision 1 ready in both regions",
    });
    const [eu, us] = await Promise.all([gateway("eu-west"), gateway("us-east")]);
    const v1Tasks = new Set((await endpoints(h, "echo")).map((e) => e.taskId));

    // A broken model (every answer 500): canaried in eu-west at 10 %, rolled back automatically.
    const euLoad = startLoad(eu.address, 30, { maxRequests: 20_000, maxInFlight: 32 });
    const usLoad = startLoad(us.address, 10, { maxRequests: 20_000, maxInFlight: 16 });
    const badAt = Date.now();
    const bad = await applyService(h, revision("v2-broken", { MODEL_FAIL: "1" }, 2_000));
    expect(bad.service?.revision).toBe(2);
    expect(bad.service?.rollout?.phase).toBe(pb.RolloutPhase.ROLLOUT_PHASE_PROGRESSING);
    const rolledBack = await waitFor(
      async () => {
        const s = await getService(h, "echo");
        return s.rollout?.phase === pb.RolloutPhase.ROLLOUT_PHASE_ROLLED_BACK && s;
      },
      { timeoutMs: 90_000, intervalMs: 200, what: "the broken revision rolled back" },
    );
    const rollbackMs = Date.now() - badAt;
    expect(rolledBack.revision).toBe(1);
    expect(rolledBack.revisions.find((r) => r.revision === 2)?.status).toBe("rolled-back");
    expect(rolledBack.rollout?.reason).toContain("error rate");
    expect(rolledBack.rollout?.reason).toContain("in eu-west at 10%");
    await waitFor(async () => (await getService(h, "echo")).replicas.every((r) => r.revision === 1), {
      timeoutMs: 30_000,
      intervalMs: 200,
      what: "the canary's replicas gone",
    });
    const euBad = await euLoad.stop();
    const usBad = await usLoad.stop();
    // Every failure was a request the gateway sent to the canary: the old revision failed none.
    const stats = eu.stats();
    const oldErrors = stats.replicas.filter((r) => v1Tasks.has(r.taskId)).reduce((n, r) => n + r.errors, 0);
    expect(oldErrors).toBe(0);
    expect(usBad.failed).toBe(0);
    expect(Object.keys(euBad.failures)).toEqual(euBad.failed > 0 ? ["500"] : []);
    const canaryShare = euBad.failed / euBad.sent;

    // A good revision: canary in eu-west, then 100 %, then us-east the same way; nothing fails.
    const goodLoadEu = startLoad(eu.address, 20, { maxRequests: 20_000, maxInFlight: 32 });
    const goodLoadUs = startLoad(us.address, 10, { maxRequests: 20_000, maxInFlight: 16 });
    const goodAt = Date.now();
    const good = await applyService(h, revision("v3", {}, 1_500));
    expect(good.service?.revision).toBe(3);
    const seen = new Set<string>();
    const promoted = await waitFor(
      async () => {
        const s = await getService(h, "echo");
        if (s.rollout?.phase === pb.RolloutPhase.ROLLOUT_PHASE_PROGRESSING)
          seen.add(`${s.rollout.region}@${s.rollout.percent}`);
        if (s.rollout?.phase === pb.RolloutPhase.ROLLOUT_PHASE_ROLLED_BACK)
          throw new Error(`good revision rolled back: ${s.rollout.reason}`);
        return s.rollout?.phase === pb.RolloutPhase.ROLLOUT_PHASE_PROMOTED && s;
      },
      { timeoutMs: 120_000, intervalMs: 100, what: "revision 3 promoted in every region" },
    );
    const promoteMs = Date.now() - goodAt;
    await waitFor(
      async () => {
        const eps = await endpoints(h, "echo");
        const s = await getService(h, "echo");
        return eps.length === 2 && eps.every((e) => e.revision === 3) && s.replicas.every((r) => r.revision === 3);
      },
      { timeoutMs: 30_000, intervalMs: 200, what: "only revision 3 left" },
    );
    const euGood = await goodLoadEu.stop();
    const usGood = await goodLoadUs.stop();
    expect(promoted.revision).toBe(3);
    expect(promoted.rollout?.doneRegions).toEqual(["eu-west", "us-east"]);
    expect([...seen]).toEqual(expect.arrayContaining(["eu-west@10", "us-east@10"]));
    expect(promoted.revisions.map((r) => [r.revision, r.modelVersion, r.status])).toEqual([
      [3, "v3", "active"],
      [2, "v2-broken", "rolled-back"],
      [1, "v1", "superseded"],
    ]);
    console.log(
      `[rollout] broken canary: rolled back ${(rollbackMs / 1000).toFixed(1)} s after apply; eu-west ${euBad.failed}/${euBad.sent} ` +
        `requests failed (${(canaryShare * 100).toFixed(1)} %, canary share 10 %), all on the canary; old revision errors 0; ` +
        `us-east ${usBad.failed}/${usBad.sent} failed; reason: ${rolledBack.rollout?.reason}`,
    );
    console.log(
      `[rollout] good revision promoted through eu-west then us-east in ${(promoteMs / 1000).toFixed(1)} s ` +
        `(steps seen ${[...seen].join(", ")}); failed requests ${euGood.failed + usGood.failed}/${euGood.sent + usGood.sent} ` +
        `(by kind: eu-west ${JSON.stringify(euGood.failures)}, us-east ${JSON.stringify(usGood.failures)})`,
    );
    expect(euGood.failed + usGood.failed).toBe(0);
    expect(canaryShare).toBeLessThan(0.25);
  }, 300_000);
});
