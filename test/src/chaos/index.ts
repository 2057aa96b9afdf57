/**
 * The fault suite as data: each step injects one fault into a running ChaosStack and returns its figures. The
 * CI suite (`test/src/chaos.test.ts`, small counts) and `npm run chaos` (main.ts, the issue's counts) run the
 * same steps in the same order on one stack, with one allocation watcher over all of them, so the capacity and
 * billing checks at the end cover every fault.
 */
import { AllocationWatcher } from "./allocations.js";
import { checkBilling } from "./billing.js";
import { agentKill } from "./faults/agent-kill.js";
import { allNatsRestart, type BurstOptions, homeServerKill, leaderKill } from "./faults/bursts.js";
import { duplicateSubmits } from "./faults/duplicates.js";
import { gatewayCut } from "./faults/gateway-cut.js";
import { type Figure, none } from "./report.js";
import type { ChaosStack } from "./stack.js";
import { FINAL } from "./workload.js";

export interface ChaosPlan {
  regions: string[];
  agentsPerRegion: number;
  duplicateSubmits: number;
  agentKills: number;
  leaderKills: number;
  leaderBurst: BurstOptions;
  natsBurst: BurstOptions;
  /** The non-home region whose gateways are cut, for how long, and how many jobs run elsewhere meanwhile. */
  gatewayCut: { region: string; cutMs: number; jobsElsewhere: number };
  /** How long allocations may take to settle at the end. */
  billingSettleMs: number;
}

/** The issue's counts (`npm run chaos`). */
export const FULL_PLAN: ChaosPlan = {
  regions: ["eu-west", "us-east"],
  agentsPerRegion: 3,
  duplicateSubmits: 1_000,
  agentKills: 20,
  leaderKills: 10,
  leaderBurst: { jobs: 500, concurrency: 16, settleMs: 300_000 },
  natsBurst: { jobs: 200, concurrency: 8, settleMs: 300_000 },
  gatewayCut: { region: "us-east", cutMs: 60_000, jobsElsewhere: 20 },
  billingSettleMs: 120_000,
};

/** Small counts for CI on a loaded 2-core machine: every fault once, a few minutes in all. */
export const CI_PLAN: ChaosPlan = {
  regions: ["eu-west", "us-east"],
  agentsPerRegion: 2,
  duplicateSubmits: 100,
  agentKills: 2,
  leaderKills: 1,
  leaderBurst: { jobs: 40, concurrency: 4, settleMs: 180_000 },
  natsBurst: { jobs: 30, concurrency: 4, settleMs: 180_000 },
  gatewayCut: { region: "us-east", cutMs: 15_000, jobsElsewhere: 4 },
  billingSettleMs: 120_000,
};

export const STACK_GPUS = "4xH100-80GB";

export interface ChaosContext {
  stack: ChaosStack;
  watcher: AllocationWatcher;
  log: (line: string) => void;
}

export interface ChaosStep {
  name: string;
  run(ctx: ChaosContext): Promise<Figure[]>;
}

export async function startWatcher(stack: ChaosStack): Promise<AllocationWatcher> {
  const capacity = new Map(stack.agents.map((a) => [a.agentId, a.gpus] as const));
  const watcher = new AllocationWatcher(await stack.nats(), capacity);
  await watcher.start();
  return watcher;
}

export function chaosSteps(plan: ChaosPlan): ChaosStep[] {
  return [
    { name: "duplicate submits", run: (c) => duplicateSubmits(c.stack, plan.duplicateSubmits, c.log) },
    { name: "agent SIGKILL", run: async (c) => (await agentKill(c.stack, plan.agentKills, c.log)).figures },
    {
      name: "leader SIGKILL during a burst",
      run: (c) => leaderKill(c.stack, plan.leaderKills, plan.leaderBurst, c.log),
    },
    { name: "home NATS server SIGKILL during a burst", run: (c) => homeServerKill(c.stack, plan.natsBurst, c.log) },
    { name: "a region's gateways cut, then restored", run: (c) => gatewayCut(c.stack, plan.gatewayCut, c.log) },
    { name: "every NATS server SIGKILLed and restarted", run: (c) => allNatsRestart(c.stack, plan.natsBurst, c.log) },
    {
      name: "capacity at every allocation revision, and billing",
      async run(c) {
        const nc = await c.stack.nats();
        const report = await c.watcher.stop();
        const client = c.stack.client();
        const billing = await checkBilling(
          nc,
          report.allocations.values(),
          plan.billingSettleMs,
          report.missed,
          async (id) => {
            const { job } = await client.getJob({ jobId: id });
            return FINAL.has(job!.state);
          },
        ).finally(() => client.close());
        c.log(
          `  ${report.revisions} allocation revisions checked (${report.missed} not seen), peak ${report.peakAllocated} of ${report.capacity} GPUs; ${billing.allocations} allocations, ${billing.charged} charged`,
        );
        for (const v of [...report.capacityViolations, ...report.doublePlacements, ...billing.mismatches].slice(0, 20))
          c.log(`  ! ${v}`);
        return [
          none(
            "Σ allocated GPUs ≤ capacity at every KV revision, under all of the above",
            "violations",
            report.capacityViolations.length + report.doublePlacements.length,
            `${report.revisions} revisions, ${report.missed} unseen; peak ${report.peakAllocated}/${report.capacity} GPUs; ${report.doublePlacements.length} tasks live on two agents`,
          ),
          none(
            "Billing after all of the above",
            "allocations not charged exactly once = GPU time",
            billing.mismatches.length,
            `${billing.allocations} allocations${billing.unverified ? `; ${billing.unverified} charges of allocations the watcher missed not judged` : ""}${billing.notEnded ? `; ${billing.notEnded} of unfinished jobs not judged` : ""}`,
          ),
        ];
      },
    },
  ];
}
