/** OperatorService.Replay at the gRPC edge: wire request → domain request, domain output → wire response. */
import type * as pb from "@capa/api";
import type { ReplayOutput, ReplayRequest } from "../replay/index.js";

export function replayRequestFromPb(req: pb.ReplayRequest): ReplayRequest {
  return {
    traceCsv: req.traceCsv,
    traceFormat: req.traceFormat,
    fleetCsv: req.fleetCsv,
    agents: req.agents,
    activeProfile: req.activeProfile,
    profiles: [...req.profiles],
    baselines: [...req.baselines],
    seed: req.seed,
    limit: req.limit,
    plotSvg: req.plotSvg,
  };
}

export function replayOutputToPb(o: ReplayOutput): pb.ReplayResponse {
  return {
    jobs: o.jobs,
    agents: o.agents,
    gpus: o.gpus,
    seed: o.seed,
    fleetSource: o.fleetSource,
    policies: o.policies.map((p) => ({
      name: p.name,
      baseline: p.baseline,
      placed: p.placed,
      completed: p.completed,
      unplaceable: p.unplaceable,
      neverStarted: p.neverStarted,
      costMicros: p.costMicros,
      meanQueueS: p.meanQueueS,
      p50QueueS: p.p50QueueS,
      p99QueueS: p.p99QueueS,
      utilisation: p.utilisation,
      overPriceCap: p.overPriceCap,
      overBudget: p.overBudget,
      preemptions: p.preemptions,
      makespanS: p.makespanS,
      wallSeconds: Math.round(p.wallMs) / 1000,
      timeline: p.timeline.map((t) => ({
        tS: t.t,
        queue: t.queue,
        rateMicrosPerHour: Math.round(t.rateMicrosPerHour),
        cumulativeMicros: Math.round(t.cumulativeMicros),
      })),
    })),
    plotVegaLiteJson: JSON.stringify(o.plot),
    plotSvg: o.plotSvg,
    wallSeconds: o.wallSeconds,
  };
}
