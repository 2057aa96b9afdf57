/**
 * `npm run chaos`: the fault suite at the issue's counts on real processes (loopback only), printing each
 * fault's lines as it goes and then the table (Fault | Figure | Goal | Measured | Met). Exits 1 when a goal is
 * not met. `--ci` runs the CI counts instead (what `chaos.test.ts` runs); `--only WORD` runs the steps whose
 * name contains WORD (and the capacity and billing checks, which always run last). CAPA_CHAOS_KEEP=1 keeps the
 * processes' logs, NATS stores and task marks.
 */
import { loadavg } from "node:os";
import { type ChaosContext, CI_PLAN, chaosSteps, FULL_PLAN, STACK_GPUS, startWatcher } from "./index.js";
import { type Figure, table } from "./report.js";
import { startChaosStack } from "./stack.js";

async function main(): Promise<void> {
  const plan = process.argv.includes("--ci") ? CI_PLAN : FULL_PLAN;
  const log = (line: string) => process.stdout.write(`${line}\n`);
  const started = Date.now();
  const load = () =>
    loadavg()
      .map((l) => l.toFixed(2))
      .join(" ");
  log(
    `capa chaos: ${plan.regions.length} regions × 3 nats-servers, 2 schedulers, ${plan.agentsPerRegion} agents per region (${STACK_GPUS}); load average ${load()}`,
  );
  const stack = await startChaosStack({
    regions: plan.regions,
    agentsPerRegion: plan.agentsPerRegion,
    gpus: STACK_GPUS,
    schedulers: 2,
    log,
  });
  const figures: Figure[] = [];
  try {
    const ctx: ChaosContext = { stack, watcher: await startWatcher(stack), log };
    const only = process.argv.includes("--only") ? process.argv[process.argv.indexOf("--only") + 1] : undefined;
    const steps = chaosSteps(plan);
    for (const step of steps.filter((s, i) => !only || s.name.includes(only) || i === steps.length - 1)) {
      log(`${step.name}:`);
      figures.push(...(await step.run(ctx)));
    }
  } finally {
    await stack.stop();
  }
  log("");
  log(table(figures));
  log(
    `\n${figures.filter((f) => f.met).length}/${figures.length} goals met in ${((Date.now() - started) / 1000).toFixed(0)} s; load average at the end ${load()} (${process.env.HOSTNAME ?? "this machine"}, shared)`,
  );
  process.exitCode = figures.every((f) => f.met) ? 0 : 1;
}

main().catch((err) => {
  process.stderr.write(`capa chaos failed: ${(err as Error).stack ?? err}\n`);
  process.exit(2);
});
