/**
 * The submit fallback's room: two intake streams (created by ensureStore), the fallback JobService uses when
 * its normal path is stuck on the store, the pending index every replica keeps for reads, and two leader parts
 * (the materialiser, the leader spread). See README "Submitting: what an acknowledgement means".
 */
import { INTAKE_STREAMS, type Store } from "@capa/bus";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { JobService } from "../jobs/job-service.js";
import type { LeaderPart } from "../leader/leadership.js";
import type { SchedulerMetrics } from "../metrics.js";
import type { JobRepo } from "../store/job-repo.js";
import { IntakeFallback } from "./fallback.js";
import { followIntake } from "./follow.js";
import { IntakeLeaderSpread } from "./leader-spread.js";
import { Materialiser } from "./materialiser.js";
import { PendingIndex } from "./pending-index.js";
import { IntakeWriter } from "./writer.js";

export { decideSubmit } from "./decision.js";
export { streamToStepDown } from "./leader-spread.js";

export interface IntakeOptions {
  nc: NatsConnection;
  store: Store;
  jobs: JobService;
  repo: JobRepo;
  metrics: SchedulerMetrics;
  logger: Logger;
  /** How long the normal submit path may take before the intake takes the submission over. */
  stallBudgetMs: number;
  spreadIntervalMs?: number;
}

export interface Intake {
  leaderParts: LeaderPart[];
  index: PendingIndex;
  stop(): Promise<void>;
}

export function startIntake(o: IntakeOptions): Intake {
  const logger = o.logger.child({ room: "intake" });
  const index = new PendingIndex(o.repo);
  const writer = new IntakeWriter(o.store.js, o.store.jsm);
  o.jobs.useFallback(new IntakeFallback(writer, index, o.metrics, logger, o.stallBudgetMs));
  const followers = INTAKE_STREAMS.map((s) =>
    followIntake(
      o.store.jsm,
      s,
      (m) => {
        if (m.entry.kind === "submission") index.add(m.entry.submission, m.stream);
        else index.cancel(m.entry.cancel);
      },
      logger,
    ),
  );
  return {
    index,
    leaderParts: [
      new Materialiser({ jsm: o.store.jsm, jobs: o.jobs, index, metrics: o.metrics, logger }),
      new IntakeLeaderSpread(o.nc, o.store.jsm, o.metrics, logger, o.spreadIntervalMs),
    ],
    stop: async () => {
      await Promise.all(followers.map((f) => f.stop()));
    },
  };
}
