/**
 * The planner worker (leader only): takes one evaluation at a time and runs reconcile → place → apply for that
 * job under the job's lock. Commit conflicts and failures are retried with a delay; the periodic sweep and the
 * "capacity freed" trigger re-enqueue every waiting job, oldest (within priority) first.
 *
 * Preemption is two steps. A "preempting" plan only marks its victims' listings `stop` (the cluster state then
 * holds them as `stopping`) and commits nothing: their GPUs stay busy through the kill grace. When their final
 * statuses remove the listings, "capacity freed" re-evaluates waiting jobs, and this one places on the freed
 * GPUs. Re-plans in between get "pending" (waiting for the stopping tasks) and never pick further victims.
 */
import { ConflictError, type Job } from "@capa/domain";
import type { Logger } from "pino";
import type { AgentRegistry } from "../agents/registry.js";
import { budgetLeft, checkGrow, mayGrow } from "../elastic/grow.js";
import { isElastic } from "../elastic/membership.js";
import { NEEDS_PLACEMENT } from "../jobs/settle.js";
import { unschedulableVerdict } from "../jobs/unschedulable.js";
import type { SchedulerMetrics } from "../metrics.js";
import type { AllocRepo } from "../store/alloc-repo.js";
import type { JobEntry, JobRepo } from "../store/job-repo.js";
import { seedFor } from "../util/ids.js";
import { JobCommitUncertain, type PlanApplier } from "./apply.js";
import { checkpointSync } from "./cluster-sync.js";
import type { ClusterStateApi, PlacementEngineApi, Plan } from "./engine.js";
import type { EpochSource } from "./epochs.js";
import type { EvalQueue, Evaluation } from "./eval-queue.js";
import type { ExplanationStore } from "./explanations.js";
import { holdPlan, releaseHolds } from "./holds.js";
import { reconcile } from "./reconcile.js";
import { WaitingJobs } from "./waiting.js";

export interface PlannerDeps {
  jobs: JobRepo;
  allocs: AllocRepo;
  agents: AgentRegistry;
  cluster: ClusterStateApi;
  engine: PlacementEngineApi;
  applier: PlanApplier;
  queue: EvalQueue;
  epochs: EpochSource;
  explanations: ExplanationStore;
  metrics: SchedulerMetrics;
  logger: Logger;
  now: () => number;
  retryDelayMs: number;
  /** Why the market cannot serve the job (e.g. every offer is above its max price, naming the cheapest), if so. */
  marketReason?: (job: Job) => string | undefined;
  /** The spec the engine places: the job's, with the tenant's default max price where it names none (auth). */
  placementSpec?: (job: Job) => Job["spec"];
}

const MAX_RETRY_DELAY_MS = 10_000;
/**
 * Evaluations in flight at once. Each holds only its own job's lock; plans are made one at a time (the engine is
 * synchronous) and hold their GPUs until committed (holds.ts), while the commits of many jobs are in flight
 * together and group-committed per agent (AllocRepo), so the store's round trips overlap instead of adding up.
 */
const MAX_CONCURRENT_EVALUATIONS = 64;

/**
 * Plans are made in the order evaluations were taken from the queue (priority, then age, for "capacity freed"),
 * whatever the order their jobs' locks and reads complete in: a job of lower priority must never plan before
 * one taken ahead of it and take the GPUs it would have got. Each evaluation gets a turn when taken; it waits
 * for the turns before it right before the engine runs and hands its turn on once its plan holds its GPUs.
 */
class PlanTurns {
  private last: Promise<void> = Promise.resolve();

  take(): { ready: Promise<void>; done: () => void } {
    const ready = this.last;
    let done!: () => void;
    const mine = new Promise<void>((resolve) => {
      done = resolve;
    });
    this.last = ready.then(() => mine);
    return { ready, done };
  }
}
type Turn = ReturnType<PlanTurns["take"]>;

export class PlannerWorker {
  private running = false;
  private loop: Promise<void> | undefined;
  private readonly syncCheckpoints: (job: Job) => void;
  private readonly waiting = new WaitingJobs();
  private readonly turns = new PlanTurns();
  /** Jobs whose last placement commit had an unknown outcome: their next evaluation adopts the listings. */
  private readonly adoptNext = new Set<string>();
  /**
   * Jobs with an evaluation running (or waiting for the job's lock), by how many, and what the latest one's plan
   * was so far: "none" until the engine ran, "all" when it placed every replica it asked for, "partial"
   * otherwise. A capacity change skips the jobs whose running evaluation still plans or places all (see
   * enqueueWaiting).
   */
  private readonly evaluating = new Map<string, { count: number; plan: "none" | "all" | "partial" }>();

  constructor(private readonly d: PlannerDeps) {
    // Reported checkpoints (folded into the job's tasks) reach the allocations preemption weighs.
    this.syncCheckpoints = checkpointSync(d.cluster, (taskId) => d.allocs.listings(taskId));
    d.jobs.onChange((entry) => {
      this.syncCheckpoints(entry.job);
      this.waiting.observe(entry.job);
    });
    for (const e of d.jobs.listActive()) this.waiting.observe(e.job);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    // Listings loaded after their jobs (restart) carry no checkpoint: copy them over once.
    for (const e of this.d.jobs.listActive()) this.syncCheckpoints(e.job);
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.d.queue.wake();
    await this.loop;
  }

  /**
   * Enqueues every job that waits for GPUs, by priority then age (from the index, not a scan of all jobs), except
   * one with an evaluation running that has not planned yet (its plan, made in its turn, which is ahead of every
   * evaluation enqueued now, sees this capacity) or that planned every replica it waits for (its commit places
   * it; a commit that fails re-enqueues it: commit conflict, retry). Each such job was evaluated again right
   * after, for nothing: under bench:e2e every finished job freed capacity while the jobs just submitted were
   * being planned and committed, 3.4 no-op evaluations per job (the job's lock, a read, a copy, a reconcile).
   * A job whose running evaluation planned without placing all it waits for is enqueued, as before.
   */
  enqueueWaiting(reason: string): void {
    for (const id of this.waiting.ids()) {
      const running = this.evaluating.get(id);
      if (!running || running.plan === "partial") this.d.queue.enqueue(id, reason);
    }
  }

  private async run(): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    while (this.running) {
      const evaluation = inFlight.size < MAX_CONCURRENT_EVALUATIONS ? this.d.queue.take() : undefined;
      this.d.metrics.evalQueueDepth.set(this.d.queue.depth);
      if (evaluation) {
        const turn = this.turns.take();
        const run = this.runOne(evaluation, turn).finally(() => {
          turn.done();
          inFlight.delete(run);
        });
        inFlight.add(run);
        continue;
      }
      if (inFlight.size >= MAX_CONCURRENT_EVALUATIONS) await Promise.race(inFlight);
      else await Promise.race([this.d.queue.wait(), ...inFlight]);
    }
    await Promise.allSettled(inFlight);
  }

  private async runOne(evaluation: Evaluation, turn: Turn): Promise<void> {
    try {
      await this.evaluate(evaluation, false, turn);
    } catch (err) {
      if (err instanceof ConflictError) await this.d.jobs.refresh(evaluation.jobId).catch(() => undefined);
      if (err instanceof JobCommitUncertain) this.adoptNext.add(err.jobId);
      const delay = Math.min(MAX_RETRY_DELAY_MS, this.d.retryDelayMs * 2 ** Math.min(evaluation.attempt, 6));
      this.d.logger.warn({ err, jobId: evaluation.jobId, delay }, "evaluation failed; retrying");
      if (this.running) this.d.queue.enqueue(evaluation.jobId, "retry", delay, evaluation.attempt + 1);
    }
  }

  /** The job's next evaluation adopts what agents hold (recovery handed it over, or a commit was uncertain). */
  adoptOnNext(jobId: string): void {
    this.adoptNext.add(jobId);
  }

  /** One evaluation: exposed for recovery, which runs it with `adopt` before status processing starts. */
  evaluate(evaluation: Evaluation, adopt = false, turn?: Turn): Promise<void> {
    const { jobId } = evaluation;
    const running = this.evaluating.get(jobId) ?? { count: 0, plan: "none" };
    running.count++;
    this.evaluating.set(jobId, running);
    return this.d.jobs
      .withLock(jobId, () => {
        running.plan = "none"; // this one's plan, from here (an earlier one of the job has ended)
        return this.evaluateLocked(evaluation, adopt, turn);
      })
      .finally(() => {
        if (--running.count === 0) this.evaluating.delete(jobId);
      });
  }

  private async evaluateLocked(evaluation: Evaluation, adopt: boolean, turn?: Turn): Promise<void> {
    const { jobs } = this.d;
    const adopting = adopt || this.adoptNext.has(evaluation.jobId);
    // Adoption decides from the listings: one that landed without its answer, or that the previous leader
    // wrote, must be in the cache first, or the task is placed a second time elsewhere (WatchBehind: retried).
    if (adopting) await this.d.allocs.catchUp();
    let entry = await jobs.fetch(evaluation.jobId);
    if (!entry) return;
    const nowMs = this.d.now();
    const r = reconcile(entry.job, (taskId) => this.d.allocs.listings(taskId), {
      nowMs,
      adopt: adopting,
      agentRegion: (id) => this.d.agents.get(id)?.record.advert.region ?? "",
    });
    if (r.job) entry = await jobs.write(entry, r.job);
    this.adoptNext.delete(evaluation.jobId);
    if (r.stops.length > 0 || r.removals.length > 0) {
      const freed = await this.d.applier.changeListings(r.stops, r.removals);
      if (freed) this.enqueueWaiting("capacity freed");
    }
    if (r.wakeAtMs !== undefined) this.d.queue.enqueue(entry.job.id, "retry backoff", r.wakeAtMs - nowMs);
    if (r.place.length > 0) await this.place(entry, r.place, evaluation, turn);
    else if (mayGrow(entry.job)) await this.grow(entry, turn);
  }

  /** A running elastic gang below max: would it get more workers now? If so, stop it to re-place it larger. */
  private async grow(entry: JobEntry, turn?: Turn): Promise<void> {
    if (turn) await turn.ready;
    const verdict = checkGrow(this.d, entry);
    turn?.done();
    if (!verdict?.job) return;
    void this.d.explanations.record(verdict.plan.explanation);
    this.d.logger.info({ jobId: entry.job.id, reason: verdict.job.reason }, "elastic gang grows");
    await this.d.jobs.write(entry, verdict.job);
    await this.d.applier.changeListings(verdict.stops, []);
  }

  private async place(entry: JobEntry, replicas: number[], evaluation: Evaluation, turn?: Turn): Promise<void> {
    if (turn) await turn.ready;
    const { job } = entry;
    const started = performance.now();
    const plan = this.d.engine.place(
      this.d.cluster,
      {
        jobId: job.id,
        spec: this.d.placementSpec ? this.d.placementSpec(job) : job.spec,
        replicas,
        ...(isElastic(job) && { elastic: elasticRequest(job) }),
      },
      { nowMs: this.d.now(), seed: seedFor(job.id) },
    );
    // Before any await: later evaluations plan around these GPUs while this commit is in flight.
    const held = plan.outcome === "preempting" ? [] : holdPlan(this.d.cluster, job, plan, this.d.now());
    const running = this.evaluating.get(job.id);
    if (running)
      running.plan = plan.outcome !== "preempting" && plan.placements.length === replicas.length ? "all" : "partial";
    turn?.done();
    this.d.metrics.planSeconds.observe((performance.now() - started) / 1000);
    this.d.metrics.plans.inc({ outcome: plan.outcome });
    // Explanations are persisted behind the plan (write-behind): they are reports, not state.
    void this.d.explanations.record(plan.explanation);
    if (plan.outcome === "preempting") {
      await this.preempt(entry, plan, evaluation);
      return;
    }
    if (plan.placements.length > 0) {
      let result: Awaited<ReturnType<PlanApplier["commit"]>>;
      try {
        result = await this.d.applier.commit(entry, plan, this.d.epochs.next(entry.revision));
      } finally {
        releaseHolds(this.d.cluster, this.d.allocs, held);
      }
      if (!result.ok) {
        this.d.metrics.commitConflicts.inc();
        this.d.logger.info({ jobId: job.id, reason: result.reason }, "plan refused at commit; re-planning");
        this.d.queue.enqueue(job.id, "commit conflict", this.d.retryDelayMs, evaluation.attempt + 1);
        return;
      }
      // An elastic gang placed at fewer than max runs; its standby tasks wait for growth, not the job.
      if (!plan.elastic && result.entry.job.tasks.some((t) => NEEDS_PLACEMENT.has(t.state))) {
        await this.noteWaiting(result.entry, plan.explanation.summary);
      }
      return;
    }
    if (plan.outcome === "unplaceable") {
      const market = this.d.marketReason?.(job);
      const why = market ? [market, ...plan.explanation.summary] : plan.explanation.summary;
      const verdict = unschedulableVerdict(job, why, plan.explanation.relaxation, this.d.now());
      if (verdict?.failed) {
        await this.d.jobs.write(entry, verdict.failed);
        return;
      }
      if (verdict) {
        if (job.reason !== verdict.reason) await this.d.jobs.write(entry, { ...job, reason: verdict.reason });
        return;
      }
    }
    await this.noteWaiting(entry, plan.explanation.summary, plan.outcome);
  }

  /**
   * Marks the plan's victims `stop` and commits nothing: the plan's GPUs are busy until the victims are gone. The
   * removal of their listings re-evaluates waiting jobs; this one is then placed (or, if something else took the
   * GPUs meanwhile, planned afresh). A victim that could not be marked (its listing changed or vanished) gets the
   * job a normal retry.
   */
  private async preempt(entry: JobEntry, plan: Plan, evaluation: Evaluation): Promise<void> {
    const { job } = entry;
    const stops = plan.preemptions.map((p) => {
      const listed = this.d.allocs.listings(p.taskId).filter((l) => l.agentId === p.agentId);
      const current = listed.find((l) => !l.assignment.stop) ?? listed[0];
      return {
        agentId: p.agentId,
        taskId: p.taskId,
        epoch: current?.assignment.epoch ?? -1,
        reason: `preempted for job ${job.id}: ${p.reason}`,
      };
    });
    await this.d.applier.changeListings(stops, []);
    const ids = plan.preemptions.map((p) => p.taskId);
    if (!ids.every((id) => this.d.cluster.allocation(id)?.stopping === true)) {
      this.d.queue.enqueue(job.id, "preemption not marked", this.d.retryDelayMs, evaluation.attempt + 1);
    }
    const shown = ids.length > 5 ? `${ids.slice(0, 5).join(", ")}, …` : ids.join(", ");
    await this.noteWaiting(
      entry,
      [`preempting ${ids.length} task(s) (${shown}); placing once they stop`],
      "preempting",
    );
  }

  /** Records why the job still waits (only when the reason text changes, so waiting jobs do not churn KV). */
  private async noteWaiting(entry: JobEntry, summary: string[], outcome = "pending"): Promise<void> {
    const market = this.d.marketReason?.(entry.job);
    const reason = waitingReason(entry.job, market ? [market, ...summary] : summary, outcome);
    if (entry.job.reason === reason) return;
    await this.d.jobs.write(entry, { ...entry.job, reason });
  }
}

/** What the engine's size decision needs to know about an elastic gang being (re-)placed. */
function elasticRequest(job: Job): { current: number; cause?: string; budgetLeft?: number } {
  const r = job.rendezvous;
  return {
    current: r?.size ?? 0,
    ...(r?.changing && { cause: r.changing.reason }),
    ...budgetLeft(job),
  };
}

function waitingReason(job: Job, summary: string[], outcome: string): string {
  const waiting = job.tasks.filter((t) => NEEDS_PLACEMENT.has(t.state)).length;
  const why = summary.filter(Boolean).join("; ") || outcome;
  return `waiting for capacity (${waiting} of ${job.tasks.length} tasks, ${outcome}): ${why}`.slice(0, 1024);
}
