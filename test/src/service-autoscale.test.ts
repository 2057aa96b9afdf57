/**
 * Autoscaling on load, end to end: `capa agent` child processes (eu-west: a cheap and a dear agent; us-east: one),
 * the Node model server, an in-process gateway per region reporting load over real gRPC, and a bounded open-loop
 * load generator on loopback. Load on the eu-west gateway raises eu-west from 1 to ≥ 3 replicas; when it stops,
 * eu-west scales back to 1, keeping the cheapest replica (most expensive removed first); us-east is untouched
 * throughout; no request fails while replicas come and go. Figures are printed.
 */
import type * as pb from "@capa/api";
import { waitFor } from "@capa/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertCliBuilt } from "./cli-harness.js";
import { startLoad } from "./load-gen.js";
import { type Harness, rpc } from "./scheduler-harness.js";
import {
  applyService,
  endpoints,
  getService,
  serviceSpec,
  startServiceFixture,
  startTestGateway,
} from "./service-harness.js";

describe("service autoscaling on gateway-measured load", () => {
  let fx: Awaited<ReturnType<typeof startServiceFixture>>;
  let h: Harness;
  let model: string;

  beforeAll(async () => {
    assertCliBuilt();
    fx = await startServiceFixture("autoscale", [
      ["as-eu-cheap", "eu-west", "2.00", "2xH100-80GB"],
      ["as-eu-dear", "eu-west", "3.00", "2xH100-80GB"],
      ["as-us-1", "us-east", "2.10", "2xH100-80GB"],
    ]);
    ({ h, model } = fx);
  }, 120_000);

  afterAll(async () => {
    await fx?.stop();
  }, 120_000);

  const gateway = async (region: string) => {
    const gw = await startTestGateway(h, region, `test-gw-${region}`);
    fx.gateways.push(gw);
    return gw;
  };

  it("scales the loaded region 1 → ≥ 3 and back to 1, most expensive first; the other region untouched", async () => {
    await applyService(
      h,
      serviceSpec(model, {
        template: {
          command: [process.execPath, model],
          env: { MODEL_DELAY_MS: "20" },
          workingDir: "",
          killGraceSeconds: 2,
          image: "",
          secretEnvNames: [],
        },
        regions: [
          { region: "eu-west", minReplicas: 1, maxReplicas: 4, demand: 0 },
          { region: "us-east", minReplicas: 1, maxReplicas: 2, demand: 0 },
        ],
        target: { requestsPerSecondPerReplica: 5, p95LatencyMs: 0, scaleUpWindowMs: 2_000, scaleDownWindowMs: 5_000 },
      }),
    );
    await waitFor(
      async () => {
        const eps = await endpoints(h, "echo");
        return eps.filter((e) => e.region === "eu-west").length === 1 && eps.some((e) => e.region === "us-east");
      },
      { timeoutMs: 60_000, intervalMs: 200, what: "one ready replica per region" },
    );
    const usBefore = (await endpoints(h, "echo", "us-east")).map((e) => e.taskId);
    expect(usBefore).toHaveLength(1);
    const euBefore = (await endpoints(h, "echo", "eu-west")).map((e) => e.jobId);
    // The us-east gateway gets no load: it reports zero for its region, which must not change it.
    const [eu] = await Promise.all([gateway("eu-west"), gateway("us-east")]);

    // us-east must never change: sampled all along.
    const usSamples = new Set<string>();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const s = await getService(h, "echo");
        const r = s.regions.find((x) => x.region === "us-east")!;
        usSamples.add(`${r.desired}/${s.replicas.filter((x) => x.region === "us-east").map((x) => x.jobId)}`);
        await new Promise((res) => setTimeout(res, 250));
      }
    })();

    const load = startLoad(eu.address, 20, { maxRequests: 4_000, maxInFlight: 32 });
    const loadStart = Date.now();
    const up = await waitFor(
      async () => {
        const eps = await endpoints(h, "echo", "eu-west");
        return eps.length >= 3 && eps.length;
      },
      { timeoutMs: 90_000, intervalMs: 200, what: "eu-west scaled to >= 3 ready replicas" },
    );
    const scaleUpMs = Date.now() - loadStart;
    // capa explain on a replica the scale-up added: its placement and the scale decision behind it.
    const original = new Set(euBefore);
    const added = (await getService(h, "echo")).replicas.find(
      (r) => r.region === "eu-west" && r.jobId && !original.has(r.jobId),
    )!;
    const explained = await waitFor(
      () =>
        rpc<pb.ExplainJobResponse>((cb) => h.operator.explainJob({ jobId: added.jobId }, cb)).catch(() => undefined),
      { timeoutMs: 20_000, what: "the added replica's explanation" },
    );
    expect(explained.explanation!.outcome).toBe("placed");
    expect(explained.service).toMatchObject({ service: "echo", region: "eu-west", revision: 1, removing: false });
    expect(explained.service!.cause).toMatch(/^scale-up 1→\d+ \(revision 1\): .*req\/s/);
    expect(explained.service!.events.some((e) => e.kind === "scale-up" && e.region === "eu-west")).toBe(true);
    // Hold the load briefly on the scaled set, then stop it.
    await new Promise((res) => setTimeout(res, 2_000));
    const during = await load.stop();
    const loadStop = Date.now();
    const after = startLoad(eu.address, 2, { maxRequests: 500, maxInFlight: 4 });
    await waitFor(
      async () => {
        const s = await getService(h, "echo");
        const live = s.replicas.filter((r) => r.region === "eu-west");
        return live.length === 1 && live[0]!.ready && s.regions.find((x) => x.region === "eu-west")!.desired === 1;
      },
      { timeoutMs: 90_000, intervalMs: 200, what: "eu-west back to 1 replica" },
    );
    const scaleDownMs = Date.now() - loadStop;
    const trickle = await after.stop();
    sampling = false;
    await sampler;

    const svc = await getService(h, "echo");
    const left = svc.replicas.filter((r) => r.region === "eu-west");
    expect(left[0]!.agentId).toBe("as-eu-cheap");
    expect([...usSamples]).toHaveLength(1);
    expect((await endpoints(h, "echo", "us-east")).map((e) => e.taskId)).toEqual(usBefore);
    const kinds = svc.events.filter((e) => e.region === "eu-west").map((e) => e.kind);
    expect(kinds).toContain("scale-up");
    expect(kinds).toContain("scale-down");
    const failed = during.failed + trickle.failed;
    console.log(
      `[autoscale] eu-west 1 -> ${up} ready in ${(scaleUpMs / 1000).toFixed(1)} s under 20 req/s (target 5/replica, ` +
        `up window 2 s); back to 1 in ${(scaleDownMs / 1000).toFixed(1)} s after the load stopped (down window 5 s); ` +
        `requests: ${during.sent + trickle.sent} sent, ${failed} failed ${JSON.stringify({
          ...during.failures,
          ...trickle.failures,
        })}; gateway retried ${eu.stats().retried}; us-east unchanged (${[...usSamples][0]})`,
    );
    for (const e of svc.events.slice(0, 6))
      console.log(`[autoscale] event ${e.region} ${e.kind} ${e.fromReplicas}->${e.toReplicas}: ${e.reason}`);
    expect(failed).toBe(0);
  }, 240_000);
});
