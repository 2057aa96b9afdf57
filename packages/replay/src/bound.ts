/**
 * Cost ÷ LP lower bound for one replayed policy. The LP (lp.ts, HiGHS) takes the policy's completed runs at
 * the times they ran and assigns each to resource classes fractionally, with every class's GPUs respected at
 * each maximal instant (an arrival followed by a departure): no placement of those runs at those times can
 * cost less, so the ratio is ≥ 1 and says how much a perfect placer could still save on the same schedule.
 * Only for small instances: the LP grows with runs × classes × instants.
 */
import { costForDuration, type JobSpec } from "@capa/domain";
import type { AgentView, NetworkTables } from "@capa/placement";
import { activeIndices, lpBound, maximalInstants, resourceClasses } from "./lp.js";
import { agentCanHost, type Run } from "./simulate.js";

export interface RunBound {
  /** The policy's cost of the runs bounded (completed runs only). */
  costMicros: number;
  boundMicros: number;
  ratio: number;
  runs: number;
}

export async function runsLpBound(
  runs: readonly Run[],
  specs: readonly JobSpec[],
  agents: readonly AgentView[],
  nowMs: number,
  tables: NetworkTables,
  dataGb = 50,
): Promise<RunBound | undefined> {
  const done = runs.filter((r) => r.completed && r.tasks.length > 0).sort((a, b) => a.startS - b.startS);
  if (done.length === 0) return undefined;
  const instants = maximalInstants(done.map((r) => ({ at: r.startS, end: r.endS })));
  const bound = await lpBound(
    done.map((r) => {
      const spec = specs[r.jobIndex]!;
      const seconds = r.endS - r.startS;
      return {
        spec,
        replicas: r.tasks.length,
        activeAt: activeIndices(instants, r.startS, r.endS),
        costOn: (agent, model, price) => {
          if (!agentCanHost(spec, agent, model, price)) return undefined;
          const egress =
            spec.dataRegion === "" ? 0 : Math.round(dataGb * tables.egressMicrosPerGb(spec.dataRegion, agent.region));
          return costForDuration(price, spec.gpusPerReplica, seconds) + egress;
        },
      };
    }),
    resourceClasses(agents, nowMs),
    instants.length,
  );
  if (bound.highs === undefined) return undefined;
  const cost = done.reduce((s, r) => s + r.costMicros, 0);
  return {
    costMicros: cost,
    boundMicros: Math.round(bound.highs),
    ratio: Math.round((cost / bound.highs) * 10_000) / 10_000,
    runs: done.length,
  };
}
