/**
 * PlacementEngine: request → context → search (replica by replica, or the whole gang) → plan + explanation.
 * Never mutates the ClusterState it is given; the scheduler applies the plan itself. Every kind of job is all
 * or nothing per plan (batch included: the scheduler re-asks for the replicas still missing). See README.md.
 */
import { defaultJobSpec, type JobSpec } from "@capa/domain";
import { buildContext, exactReplicaCost } from "./context.js";
import { type ElasticPlan, elasticOf, topRejection } from "./elastic/place.js";
import { decideSize, proposeSizes, type SizeOption } from "./elastic/size.js";
import { UnknownProfileError } from "./errors.js";
import { describePlan } from "./explain.js";
import type {
  AllocationView,
  Explanation,
  Placement,
  PlacementRequest,
  PlaceOptions,
  Plan,
  PlanOutcome,
  Preemption,
} from "./model.js";
import type { Candidate, RequestContext } from "./pipeline.js";
import { BUILTIN_PROFILES, type Profile, type ResolvedProfile, resolveProfile, validateProfile } from "./profile.js";
import { RELAXATIONS } from "./relax.js";
import { mulberry32, seededHash } from "./rng.js";
import { searchCpuReplica } from "./search/cpu.js";
import { searchGang } from "./search/gang.js";
import { apportion } from "./search/inference.js";
import { PlanOverlay } from "./search/overlay.js";
import { searchPreemptingReplica } from "./search/preempt.js";
import { searchPreemptingGang } from "./search/preempt-gang.js";
import { type ReplicaSearch, searchReplica } from "./search/replica.js";
import type { Scored } from "./search/scoring.js";
import type { ClusterState } from "./state/cluster-state.js";
import { DEFAULT_TABLES, type NetworkTables } from "./tables.js";

export interface EngineOptions {
  profiles?: Profile[];
  activeProfile?: string;
  /** Egress and RTT tables; defaults to the built-in ones (tables.ts). */
  tables?: NetworkTables;
}

/** A chosen candidate with the GPU indices it gets. */
export interface Choice extends Scored {
  gpuIndices: number[];
}

/** "soon": free GPUs plus those of the allocations passed as already gone (stopping ones); no evictions. */
type Capacity = "free" | "total" | "preempt" | "soon";

/** The outcome of one search attempt, before it becomes a plan. */
export interface Attempt {
  ok: boolean;
  chosen: Choice[];
  runnerUp: Scored[];
  considered: number;
  rejections: Record<string, number>;
  preemptions: Preemption[];
}

export class PlacementEngine {
  private readonly byName = new Map<string, ResolvedProfile>();
  private active: string;
  readonly tables: NetworkTables;

  constructor(options: EngineOptions = {}) {
    for (const p of BUILTIN_PROFILES) this.byName.set(p.name, resolveProfile(p));
    for (const p of options.profiles ?? []) this.upsertProfile(p);
    this.active = options.activeProfile ?? "cheapest";
    if (!this.byName.has(this.active)) throw new UnknownProfileError(this.active);
    this.tables = options.tables ?? DEFAULT_TABLES;
  }

  activeProfile(): Profile {
    return toProfile(this.byName.get(this.active)!);
  }

  setActiveProfile(name: string): void {
    if (!this.byName.has(name)) throw new UnknownProfileError(name);
    this.active = name;
  }

  /** Adds or replaces a profile (validated; throws ProfileError). */
  upsertProfile(profile: Profile): void {
    this.byName.set(profile.name, resolveProfile(validateProfile(profile)));
  }

  profiles(): Profile[] {
    return [...this.byName.values()].map(toProfile).sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  place(state: ClusterState, request: PlacementRequest, options: PlaceOptions): Plan {
    const profile = this.resolve(options.profile);
    const spec = normaliseSpec(request.spec);
    if (spec.elastic && spec.kind === "training" && request.replicas.length > 0) {
      return this.placeElastic(state, request, spec, options, profile);
    }
    return this.placeFixed(state, request, spec, options, profile);
  }

  /**
   * An elastic gang: propose sizes (max down to min), try a gang of each on the capacity there is (counting the
   * gang's own allocations in `request.elastic.releasing` as free: "could it grow if it restarted now?"), let
   * the size filters and scorers decide (elastic/size.ts), and plan the chosen size for the lowest replicas (a
   * worker's rank is its replica number). When not even min fits, the normal gang path runs for min workers, so
   * an elastic job waits, preempts or is unplaceable exactly as a fixed gang of min would be.
   */
  private placeElastic(
    state: ClusterState,
    request: PlacementRequest,
    spec: JobSpec,
    options: PlaceOptions,
    profile: ResolvedProfile,
  ): Plan {
    const bounds = spec.elastic!;
    const info = request.elastic ?? { current: 0 };
    const replicas = [...request.replicas].sort((a, b) => a - b);
    const max = Math.min(bounds.max, replicas.length);
    const min = Math.min(bounds.min, max);
    const gone = info.releasing ?? [];
    const capacity: Capacity = gone.length > 0 ? "soon" : "free";
    const tried = new Map<number, { ctx: RequestContext; attempt: Attempt }>();
    const sizes: SizeOption[] = proposeSizes(min, max).map((size) => {
      const sized = { ...request, replicas: replicas.slice(0, size) };
      const ctx = buildContext(sized, spec, options, profile, this.tables);
      const attempt = this.attempt(state, ctx, capacity, gone);
      tried.set(size, { ctx, attempt });
      if (!attempt.ok) return { size, fits: false, hourly: 0, cost: 0, why: topRejection(attempt.rejections) };
      const hourly = attempt.chosen.reduce((sum, c) => sum + c.candidate.pricePerGpuHour * spec.gpusPerReplica, 0);
      return { size, fits: true, hourly, cost: totalCost(ctx, attempt.chosen) };
    });
    const decision = decideSize({
      min: bounds.min,
      max: bounds.max,
      current: info.current,
      options: sizes,
      ...(info.budgetLeft !== undefined && { budgetLeft: info.budgetLeft }),
    });
    const elastic: ElasticPlan = elasticOf(bounds, info, decision);
    if (decision.size === 0) {
      const fixed = this.placeFixed(state, { ...request, replicas: replicas.slice(0, min) }, spec, options, profile);
      return withElastic(fixed, elastic);
    }
    const chosen = tried.get(decision.size)!;
    return withElastic(this.plan(chosen.ctx, "placed", chosen.attempt, ""), elastic);
  }

  private placeFixed(
    state: ClusterState,
    request: PlacementRequest,
    spec: JobSpec,
    options: PlaceOptions,
    profile: ResolvedProfile,
  ): Plan {
    const ctx = buildContext(request, spec, options, profile, this.tables);
    if (request.replicas.length === 0) return this.plan(ctx, "placed", emptyAttempt(), "");

    const placed = this.attempt(state, ctx, "free");
    if (placed.ok) return this.plan(ctx, "placed", placed, "");

    // Nothing fits now. Would it fit on this fleet if nothing else ran? That decides pending vs unplaceable.
    const ever = this.attempt(state, buildContext(request, spec, options, profile, this.tables), "total");
    const stopping = state.stoppingAllocations();
    const mayPreempt = profile.preemption && state.hasAllocationsYieldingTo(spec.priority, spec.interruptible);
    if (ever.ok && (mayPreempt || stopping.length > 0)) {
      // GPUs of stopping allocations (victims of an earlier preemption, cancelled tasks) count as soon free: a
      // job that fits once they are gone waits for them instead of evicting anyone else. Without this, every
      // re-plan during a victim's kill grace would preempt again, maybe other victims (lost work grows with time).
      const soon = this.attempt(
        state,
        buildContext(request, spec, options, profile, this.tables),
        mayPreempt ? "preempt" : "soon",
        stopping,
      );
      if (soon.ok && soon.preemptions.length === 0) {
        const awaiting = awaitedTasks(state, soon.chosen, stopping);
        return this.plan(ctx, "pending", { ...placed, preemptions: [] }, "", awaiting);
      }
      if (soon.ok) return this.plan(ctx, "preempting", { ...soon, rejections: placed.rejections }, "");
    }
    const outcome: PlanOutcome = ever.ok ? "pending" : "unplaceable";
    // A pending job places once capacity frees up; only an unplaceable one needs a change from its tenant.
    const relaxation =
      outcome === "unplaceable" && options.relaxations !== false
        ? this.relaxation(state, request, spec, options, profile)
        : "";
    return this.plan(ctx, outcome, placed, relaxation);
  }

  /**
   * One try at placing every requested replica. "free": on free GPUs now; "total": as if nothing else ran (is
   * it placeable at all?); "preempt": evicting tasks that yield to this job where free GPUs do not suffice.
   * `ok` is false, with the failing search's rejections, if any replica cannot be placed (all or nothing).
   */
  attempt(state: ClusterState, ctx: RequestContext, capacity: Capacity, gone: readonly AllocationView[] = []): Attempt {
    const { request, spec } = ctx;
    const overlay = new PlanOverlay(state);
    for (const a of gone) overlay.evict(a);
    const replicas = request.replicas;
    if (spec.kind === "training" && replicas.length > 1 && spec.gpusPerReplica > 0) {
      return this.attemptGang(state, ctx, overlay, capacity);
    }
    const rng = mulberry32(seededHash(ctx.options.seed, request.jobId));
    const targets = spec.kind === "inference" ? apportion(ctx.latencyTargets, replicas.length) : [];
    const chosen: Choice[] = [];
    const runnerUp: Scored[] = [];
    const preemptions: Preemption[] = [];
    let considered = 0;
    let firstRejections: Record<string, number> | undefined;
    for (let i = 0; i < replicas.length; i++) {
      const target = targets[i];
      const replicaCtx: RequestContext = {
        ...ctx,
        rejections: {},
        onlyRegion: target,
        latencyTargets: target !== undefined ? [{ region: target, weight: 1 }] : ctx.latencyTargets,
      };
      const peers = chosen.map((s) => s.candidate);
      const mode = capacity === "total" ? "total" : "free";
      const searchOnce = (c: RequestContext, avoidProviders?: ReadonlySet<string>): ReplicaSearch =>
        spec.gpusPerReplica === 0
          ? searchCpuReplica(state, c, peers)
          : searchReplica(state, c, overlay, peers, rng, { capacity: mode, avoidProviders });
      let search: ReplicaSearch | undefined;
      // Inference replicas go to providers the service does not use yet where they can (availability: one
      // provider's outage must not take the whole service down), whatever the profile's weights.
      if (spec.kind === "inference" && peers.length > 0 && capacity !== "total") {
        const used = new Set(peers.map((p) => p.agent.provider));
        const spread = searchOnce({ ...replicaCtx, rejections: {} }, used);
        if (spread.best) search = spread;
      }
      search ??= searchOnce(replicaCtx);
      // A demand region that cannot host its share: the replica goes elsewhere, as close to it as scoring finds.
      if (!search.best && target !== undefined) search = searchOnce({ ...replicaCtx, onlyRegion: undefined });
      considered += search.considered;
      firstRejections ??= replicaCtx.rejections;
      let best: Scored | undefined = search.best;
      if (!best && capacity === "preempt" && spec.gpusPerReplica > 0) {
        const preempting = searchPreemptingReplica(state, { ...replicaCtx, onlyRegion: undefined }, overlay, peers);
        considered += preempting.considered;
        if (preempting.best) {
          for (const unit of preempting.best.victims) {
            for (const a of unit.allocations) {
              overlay.evict(a);
              preemptions.push(toPreemption(a, ctx));
            }
          }
          best = preempting.best;
        }
      }
      if (!best) return { ...emptyAttempt(), ok: false, considered, rejections: replicaCtx.rejections };
      chosen.push({ ...best, gpuIndices: claim(overlay, best, capacity, spec.gpusPerReplica) });
      if (search.runnerUp) runnerUp.push(search.runnerUp);
    }
    return { ok: true, chosen, runnerUp, considered, rejections: firstRejections ?? {}, preemptions };
  }

  private attemptGang(state: ClusterState, ctx: RequestContext, overlay: PlanOverlay, capacity: Capacity): Attempt {
    const replicas = ctx.request.replicas.length;
    const gpus = ctx.spec.gpusPerReplica;
    if (capacity === "preempt" || capacity === "soon") {
      // "soon" is the same domain search with no victims: only free and soon-free (evicted on the overlay) GPUs.
      const { best, considered } = searchPreemptingGang(state, ctx, overlay, replicas, capacity === "preempt");
      if (!best) return { ...emptyAttempt(), ok: false, considered, rejections: ctx.rejections };
      const preemptions: Preemption[] = [];
      for (const unit of best.victims) {
        for (const a of unit.allocations) {
          overlay.evict(a);
          preemptions.push(toPreemption(a, ctx));
        }
      }
      const chosen = best.members.map((m) => ({ ...m, gpuIndices: claim(overlay, m, capacity, gpus) }));
      return { ok: true, chosen, runnerUp: [], considered, rejections: ctx.rejections, preemptions };
    }
    const gang = searchGang(state, ctx, overlay, replicas, { capacity });
    if (!gang.best) return { ...emptyAttempt(), ok: false, considered: gang.considered, rejections: ctx.rejections };
    return {
      ok: true,
      chosen: gang.best.members.map((m) => ({ ...m, gpuIndices: claim(overlay, m, capacity, gpus) })),
      runnerUp: gang.runnerUp?.members ?? [],
      considered: gang.considered,
      rejections: ctx.rejections,
      preemptions: [],
    };
  }

  /** The cheapest single relaxation that places the job now (or, failing that, once capacity frees up). */
  private relaxation(
    state: ClusterState,
    request: PlacementRequest,
    spec: JobSpec,
    options: PlaceOptions,
    profile: ResolvedProfile,
  ): string {
    for (const capacity of ["free", "total"] as const) {
      let best: { text: string; cost: number } | undefined;
      for (const r of RELAXATIONS) {
        if (!r.applies(spec)) continue;
        const relaxed = r.relax(spec);
        const ctx = buildContext({ ...request, spec: relaxed }, relaxed, options, profile, this.tables);
        const attempt = this.attempt(state, ctx, capacity);
        if (!attempt.ok) continue;
        const cost = totalCost(ctx, attempt.chosen);
        if (!best || cost < best.cost) best = { text: r.describe(spec, toPlacements(ctx, attempt.chosen)), cost };
      }
      if (best) return capacity === "free" ? best.text : `${best.text} (once capacity frees up)`;
    }
    return "";
  }

  private plan(
    ctx: RequestContext,
    outcome: PlanOutcome,
    attempt: Attempt,
    relaxation: string,
    awaitingTaskIds: string[] = [],
  ): Plan {
    const placed = outcome === "placed" || outcome === "preempting";
    const placements = placed ? toPlacements(ctx, attempt.chosen) : [];
    const runnerUp = toPlacements(ctx, attempt.runnerUp);
    const estimatedCost = placed
      ? attempt.chosen.reduce(
          (sum, s) => sum + exactReplicaCost(ctx, s.candidate.pricePerGpuHour, s.candidate.region),
          0,
        )
      : 0;
    const explanation: Explanation = {
      jobId: ctx.request.jobId,
      outcome,
      profile: ctx.profile.name,
      candidatesConsidered: attempt.considered,
      rejections: attempt.rejections,
      chosen: placements,
      runnerUp,
      relaxation,
      preemptedTaskIds: attempt.preemptions.map((p) => p.taskId),
      ...(awaitingTaskIds.length > 0 ? { awaitingTaskIds } : {}),
      summary: [],
      decidedAtMs: ctx.nowMs,
      seed: ctx.options.seed,
      estimatedCost,
    };
    explanation.summary = describePlan(explanation);
    return { jobId: ctx.request.jobId, outcome, placements, preemptions: attempt.preemptions, explanation };
  }

  private resolve(profile: string | Profile | undefined): ResolvedProfile {
    if (profile !== undefined && typeof profile !== "string") return resolveProfile(validateProfile(profile));
    const resolved = this.byName.get(profile ?? this.active);
    if (!resolved) throw new UnknownProfileError(profile ?? this.active);
    return resolved;
  }
}

/** The plan with the size decision attached, its line first in the explanation's summary. */
function withElastic(plan: Plan, elastic: ElasticPlan): Plan {
  const explanation = { ...plan.explanation, elastic };
  explanation.summary = describePlan(explanation);
  return { ...plan, elastic, explanation };
}

/** Takes the replica's GPUs on the overlay: concrete indices when placing now, a count when checking "ever". */
function claim(overlay: PlanOverlay, s: Scored, capacity: Capacity, gpus: number): number[] {
  if (gpus === 0) return [];
  if (capacity === "total") {
    overlay.reserve(s.candidate.offer, gpus);
    return [];
  }
  return overlay.take(s.candidate.offer, gpus);
}

function toPlacements(ctx: RequestContext, chosen: ReadonlyArray<Scored & { gpuIndices?: number[] }>): Placement[] {
  return chosen.map((s, i) => {
    const c: Candidate = s.candidate;
    return {
      replica: ctx.request.replicas[i] ?? i,
      agentId: c.agent.id,
      region: c.region,
      gpuModel: c.model,
      gpuIndices: s.gpuIndices ?? [],
      pricePerGpuHour: c.pricePerGpuHour,
      interruptible: c.interruptible,
      score: round2(s.score),
      scores: Object.fromEntries(Object.entries(s.scores).map(([k, v]) => [k, round2(v)])),
    };
  });
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

function emptyAttempt(): Attempt {
  return { ok: true, chosen: [], runnerUp: [], considered: 0, rejections: {}, preemptions: [] };
}

function totalCost(ctx: RequestContext, chosen: readonly Scored[]): number {
  return chosen.reduce((sum, s) => sum + exactReplicaCost(ctx, s.candidate.pricePerGpuHour, s.candidate.region), 0);
}

/** The stopping allocations holding GPUs that a "soon" placement takes. */
function awaitedTasks(state: ClusterState, chosen: readonly Choice[], stopping: readonly AllocationView[]): string[] {
  const ids = new Set(stopping.map((a) => a.taskId));
  const out = new Set<string>();
  for (const c of chosen) {
    for (const index of c.gpuIndices) {
      const holder = state.holderOf(c.candidate.agent.id, index);
      if (holder !== undefined && ids.has(holder)) out.add(holder);
    }
  }
  return [...out].sort();
}

function toPreemption(a: AllocationView, ctx: RequestContext): Preemption {
  const why =
    a.priority < ctx.spec.priority
      ? `priority ${a.priority} < ${ctx.spec.priority} of job ${ctx.request.jobId}`
      : `interruptible, reclaimed for non-interruptible job ${ctx.request.jobId}`;
  return { taskId: a.taskId, jobId: a.jobId, agentId: a.agentId, gpuIndices: [...a.gpuIndices], reason: why };
}

function toProfile(p: ResolvedProfile): Profile {
  return {
    name: p.name,
    ...(p.description ? { description: p.description } : {}),
    weights: { ...p.weights },
    maxCandidates: p.maxCandidates,
    defaultDurationSeconds: p.defaultDurationSeconds,
    defaultDataGb: p.defaultDataGb,
    costScaleMicros: p.costScaleMicros,
    preemption: p.preemption,
  };
}

/** Fills fields a caller may have left out (specs decoded from older messages), so filters can rely on them. */
function normaliseSpec(spec: JobSpec): JobSpec {
  for (const key of SPEC_KEYS) if (spec[key] === undefined) return { ...defaultJobSpec(), ...spec };
  return spec;
}

const SPEC_KEYS = Object.keys(defaultJobSpec()) as Array<keyof JobSpec>;
