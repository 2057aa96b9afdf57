/**
 * PlacementEngine: request → context → search (replica by replica, or the whole gang) → plan + explanation.
 * Never mutates the ClusterState it is given; the scheduler applies the plan itself.
 */
import { defaultJobSpec, type JobSpec } from "@capa/domain";
import { buildContext, exactReplicaCost } from "./context.js";
import { UnknownProfileError } from "./errors.js";
import { describePlan } from "./explain.js";
import type { Explanation, Placement, PlacementRequest, PlaceOptions, Plan, PlanOutcome, Preemption } from "./model.js";
import type { Candidate, RequestContext } from "./pipeline.js";
import { BUILTIN_PROFILES, type Profile, type ResolvedProfile, resolveProfile, validateProfile } from "./profile.js";
import { mulberry32, seededHash } from "./rng.js";
import { searchCpuReplica } from "./search/cpu.js";
import { searchGang } from "./search/gang.js";
import { PlanOverlay } from "./search/overlay.js";
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

/** The outcome of one search attempt, before it becomes a plan. */
export interface Attempt {
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
    const ctx = buildContext(request, spec, options, profile, this.tables);
    if (request.replicas.length === 0) return this.plan(ctx, "placed", emptyAttempt(), "");

    const attempt = this.attempt(state, ctx, "free");
    if (attempt) return this.plan(ctx, "placed", attempt, "");

    // Nothing fits now. Would it fit on this fleet if it were empty? Decides pending vs unplaceable.
    const failed = this.lastFailure ?? emptyAttempt();
    const everCtx = buildContext(request, spec, options, profile, this.tables);
    const ever = this.attempt(state, everCtx, "total");
    const outcome: PlanOutcome = ever ? "pending" : "unplaceable";
    return this.plan(ctx, outcome, failed, "");
  }

  private lastFailure: Attempt | undefined;

  /** One try at placing every requested replica; undefined (with `lastFailure` set) if any replica fails. */
  attempt(state: ClusterState, ctx: RequestContext, capacity: "free" | "total"): Attempt | undefined {
    const { request, spec } = ctx;
    const overlay = new PlanOverlay(state);
    const rng = mulberry32(seededHash(ctx.options.seed, request.jobId));
    const replicas = request.replicas;
    if (spec.kind === "training" && replicas.length > 1 && spec.gpusPerReplica > 0) {
      const gang = searchGang(state, ctx, overlay, replicas.length, { capacity });
      if (!gang.best) {
        this.lastFailure = { ...emptyAttempt(), considered: gang.considered, rejections: ctx.rejections };
        return undefined;
      }
      return {
        chosen: gang.best.members.map((m) => ({ ...m, gpuIndices: claim(overlay, m, capacity, spec.gpusPerReplica) })),
        runnerUp: gang.runnerUp?.members ?? [],
        considered: gang.considered,
        rejections: ctx.rejections,
        preemptions: [],
      };
    }

    const chosen: Choice[] = [];
    const runnerUp: Scored[] = [];
    let considered = 0;
    let firstRejections: Record<string, number> | undefined;
    for (let i = 0; i < replicas.length; i++) {
      const replicaCtx: RequestContext = { ...ctx, rejections: {} };
      const peers = chosen.map((s) => s.candidate);
      const search: ReplicaSearch =
        spec.gpusPerReplica === 0
          ? searchCpuReplica(state, replicaCtx, peers, new Set())
          : searchReplica(state, replicaCtx, overlay, peers, rng, { capacity });
      considered += search.considered;
      firstRejections ??= replicaCtx.rejections;
      if (!search.best) {
        this.lastFailure = { ...emptyAttempt(), considered, rejections: replicaCtx.rejections };
        return undefined;
      }
      chosen.push({ ...search.best, gpuIndices: claim(overlay, search.best, capacity, spec.gpusPerReplica) });
      if (search.runnerUp) runnerUp.push(search.runnerUp);
    }
    return { chosen, runnerUp, considered, rejections: firstRejections ?? {}, preemptions: [] };
  }

  private plan(ctx: RequestContext, outcome: PlanOutcome, attempt: Attempt, relaxation: string): Plan {
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
      summary: [],
      decidedAtMs: ctx.nowMs,
      seed: ctx.options.seed,
      estimatedCost,
    };
    explanation.summary = describePlan(explanation);
    return { jobId: ctx.request.jobId, outcome, placements, preemptions: attempt.preemptions, explanation };
  }

  private resolve(name: string | undefined): ResolvedProfile {
    const profile = this.byName.get(name ?? this.active);
    if (!profile) throw new UnknownProfileError(name ?? this.active);
    return profile;
  }
}

/** Takes the replica's GPUs on the overlay: concrete indices when placing now, a count when checking "ever". */
function claim(overlay: PlanOverlay, s: Scored, capacity: "free" | "total", gpus: number): number[] {
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
  return { chosen: [], runnerUp: [], considered: 0, rejections: {}, preemptions: [] };
}

function toProfile(p: ResolvedProfile): Profile {
  return {
    name: p.name,
    ...(p.description ? { description: p.description } : {}),
    weights: { ...p.weights },
    maxCandidates: p.maxCandidates,
    defaultDurationSeconds: p.defaultDurationSeconds,
    defaultDataGb: p.defaultDataGb,
    preemption: p.preemption,
  };
}

/** Fills fields a caller may have left out (specs decoded from older messages), so filters can rely on them. */
function normaliseSpec(spec: JobSpec): JobSpec {
  return { ...defaultJobSpec(), ...spec };
}
