/**
 * The fault suite on CI: every fault of `npm run chaos` once, with small counts, on real processes (a 2-region
 * NATS supercluster of 6 nats-servers, 2 `capa scheduler` replicas, 4 `capa agent`s; loopback only). Each step
 * prints its figures and fails when a count goal is not met (acknowledged-but-lost jobs, duplicate runs or
 * placements, capacity violations, billing mismatches: 0 on any machine). Latency figures are printed; they are
 * judged by `npm run chaos` (main.ts, same code, full counts), not by timed assertions on a loaded CI machine.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ChaosContext, CI_PLAN, chaosSteps, STACK_GPUS, startWatcher } from "./chaos/index.js";
import { type Figure, table } from "./chaos/report.js";
import { type ChaosStack, startChaosStack } from "./chaos/stack.js";

const log = (line: string) => process.stdout.write(`[chaos] ${line}\n`);

describe("fault suite (CI counts)", () => {
  let stack: ChaosStack;
  let ctx: ChaosContext;
  const figures: Figure[] = [];

  beforeAll(async () => {
    stack = await startChaosStack({
      regions: CI_PLAN.regions,
      agentsPerRegion: CI_PLAN.agentsPerRegion,
      gpus: STACK_GPUS,
      schedulers: 2,
      log,
    });
    ctx = { stack, watcher: await startWatcher(stack), log };
  }, 240_000);
  afterAll(async () => {
    if (figures.length) log(`\n${table(figures)}`);
    await stack?.stop();
  }, 120_000);

  for (const step of chaosSteps(CI_PLAN)) {
    it(step.name, async () => {
      const got = await step.run(ctx);
      figures.push(...got);
      for (const f of got) log(`${f.fault} | ${f.figure}: ${f.measured} (goal ${f.goal})`);
      expect(got.filter((f) => f.kind === "count" && !f.met)).toEqual([]);
      expect(got.length).toBeGreaterThan(0);
    }, 600_000);
  }
});
