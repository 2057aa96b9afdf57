/**
 * Agent loss (leader only): an agent silent past its timeout is marked lost (persisted); each of its tasks that
 * is not final becomes `lost` in its job (→ rescheduling), and its assignments are removed, so a returning
 * agent stops them and the GPUs are free in the cluster state. Affected jobs are re-evaluated.
 * A region whose agents all went silent is held for the partition grace first (partition.ts).
 */
import { isFinalTaskState } from "@capa/domain";
import type { Logger } from "pino";
import { settle } from "../jobs/settle.js";
import type { SchedulerMetrics } from "../metrics.js";
import type { AllocRepo } from "../store/alloc-repo.js";
import type { JobRepo } from "../store/job-repo.js";
import { decideLosses, type RegionCut } from "./partition.js";
import type { AgentRegistry } from "./registry.js";

export interface LivenessDeps {
  registry: AgentRegistry;
  jobs: JobRepo;
  allocs: AllocRepo;
  metrics: SchedulerMetrics;
  logger: Logger;
  now: () => number;
  evaluate: (jobId: string, reason: string) => void;
  /** How long a wholly silent region's agents are held before they are lost (partition.ts). */
  partitionGraceMs: number;
}

/**
 * Where a lost agent's task stops being billed: its last heartbeat or accepted report, never the detection time
 * (the silent window ran nothing anyone saw), and never before the task started (or was placed).
 */
export function lostTaskEnd(
  task: { startedAtMs: number; placedAtMs: number },
  lastSeenMs: number,
  nowMs: number,
): number {
  const floor = task.startedAtMs || task.placedAtMs || 0;
  return Math.max(floor, Math.min(lastSeenMs, nowMs));
}

export class AgentLiveness {
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  /** Regions held by the partition grace, so each hold is logged once. */
  private held = new Set<string>();
  /** Regions seen wholly silent, until their silent agents are back or lost (partition.ts). */
  private cuts: ReadonlyMap<string, RegionCut> = new Map();

  constructor(
    private readonly d: LivenessDeps,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => void this.tick(), this.intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const { lose, held, cuts } = decideLosses(
        this.d.registry.silence(),
        this.d.now(),
        this.d.partitionGraceMs,
        undefined,
        this.cuts,
      );
      this.cuts = cuts;
      for (const h of held)
        if (!this.held.has(h.region))
          this.d.logger.warn(
            { region: h.region, agents: h.agents, graceMs: this.d.partitionGraceMs },
            "every agent of the region is silent: holding them (no re-placement) for the partition grace",
          );
      this.held = new Set(held.map((h) => h.region));
      this.d.metrics.regionsHeld.set(held.length);
      for (const id of lose) await this.lose(id);
      for (const id of this.d.registry.dirty()) await this.d.registry.persist(id);
    } catch (err) {
      this.d.logger.warn({ err }, "agent liveness pass failed; retrying next tick");
    } finally {
      this.busy = false;
    }
  }

  async lose(agentId: string): Promise<void> {
    const entry = this.d.registry.get(agentId);
    if (!entry) return;
    const silentMs = this.d.now() - entry.lastSeenMs;
    if (!entry.record.lost) {
      this.d.logger.warn({ agentId, silentMs }, "agent lost");
      this.d.metrics.agentsLost.inc();
    }
    this.d.registry.markLost(agentId);
    await this.d.registry.persist(agentId);
    const listed = this.d.allocs.get(agentId)?.value.tasks ?? [];
    const message = `agent ${agentId} lost (silent for ${Math.round(silentMs / 1000)} s)`;
    const jobIds = [...new Set(listed.map((t) => t.jobId))];
    for (const jobId of jobIds) {
      await this.d.jobs.mutate(jobId, (job) => {
        let changed = false;
        for (const t of job.tasks) {
          const listing = listed.find((l) => l.taskId === t.id);
          if (!listing || t.agentId !== agentId || t.epoch !== listing.epoch || isFinalTaskState(t.state)) continue;
          t.state = "lost";
          t.message = message;
          t.finishedAtMs = lostTaskEnd(t, entry.lastSeenMs, this.d.now());
          changed = true;
        }
        return changed ? settle(job, this.d.now()) : undefined;
      });
    }
    if (listed.length > 0) {
      await this.d.allocs.mutate(agentId, (tasks) => {
        const next = tasks.filter((t) => !listed.some((l) => l.taskId === t.taskId && l.epoch === t.epoch));
        return next.length === tasks.length ? undefined : next;
      });
    }
    for (const jobId of jobIds) this.d.evaluate(jobId, message);
  }
}
