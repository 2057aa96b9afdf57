/**
 * The LP lower bound on an instance, solved with HiGHS (the `highs` WASM build):
 *   min Σ c_jr x_jr  s.t.  Σ_r x_jr = replicas_j,  Σ_j g_j x_jr ≤ cap_r,  x ≥ 0
 * over resource classes r = agents identical in everything a filter looks at (region, residency, model, memory,
 * prices), capacity = their GPUs, at each sampled instant for the jobs active then. Relaxes integrality,
 * per-agent packing, gang locality, spread and capacity between instants, so no placement of the same jobs
 * can cost less.
 */
import type { JobSpec } from "@capa/domain";
import type { AgentView } from "@capa/placement";
import highsModule from "highs";

export interface LpJob {
  spec: JobSpec;
  replicas: number;
  /** Indices of the sampled instants at which the job holds its GPUs. */
  activeAt: number[];
  /** Cost of one replica on an agent of a class (micros), or undefined if infeasible there. */
  costOn(agent: AgentView, model: string, price: number): number | undefined;
}

interface ResourceClass {
  key: string;
  agent: AgentView;
  model: string;
  onDemand: number;
  spot: number;
  capacity: number;
}

export function resourceClasses(agents: readonly AgentView[], nowMs: number): ResourceClass[] {
  const classes = new Map<string, ResourceClass>();
  for (const a of agents) {
    if (a.draining || nowMs - a.lastSeenMs > 30_000) continue;
    for (const p of a.prices) {
      const gpus = a.gpus.filter((g) => g.model === p.gpuModel && g.healthy);
      if (gpus.length === 0) continue;
      const vram = Math.min(...gpus.map((g) => g.vramMib));
      const key = [a.region, a.residency, p.gpuModel, vram, p.onDemandPerHour, p.interruptiblePerHour].join("|");
      const c = classes.get(key);
      if (c) c.capacity += gpus.length;
      else {
        classes.set(key, {
          key,
          agent: a,
          model: p.gpuModel,
          onDemand: p.onDemandPerHour,
          spot: p.interruptiblePerHour,
          capacity: gpus.length,
        });
      }
    }
  }
  return [...classes.values()].sort((x, y) => (x.key < y.key ? -1 : 1));
}

function priceFor(c: ResourceClass, spec: JobSpec): number {
  return spec.interruptible && c.spot > 0 && c.spot < c.onDemand ? c.spot : c.onDemand;
}

/** The slice of the `highs` API used here. */
interface Highs {
  solve(problem: string, options?: Record<string, unknown>): { Status: string; ObjectiveValue: number };
}
// `highs` is a CommonJS package with an ESM build: under NodeNext its types describe the CommonJS shape
// ({ default: loader }) while Node's ESM import gives the loader itself. Accept both.
const loadHighs = ((highsModule as unknown as { default?: unknown }).default ?? highsModule) as () => Promise<Highs>;
let highs: Highs | undefined;

/** LP optimum in micros (undefined if infeasible), with the min-cost-flow cross-check input. */
export async function lpBound(
  jobs: readonly LpJob[],
  classes: readonly ResourceClass[],
  instants: number,
): Promise<{ highs: number | undefined; columns: number; rows: number; nonzeros: number }> {
  highs ??= await loadHighs();
  const objective: string[] = [];
  const rows: string[] = [];
  // capacityTerms[instant][class]: GPUs × variable of every job active then.
  const capacityTerms: string[][][] = Array.from({ length: instants }, () => classes.map(() => []));
  let columns = 0;
  jobs.forEach((job, j) => {
    const terms: string[] = [];
    classes.forEach((c, r) => {
      const cost = job.costOn(c.agent, c.model, priceFor(c, job.spec));
      if (cost === undefined) return;
      const x = `x${columns++}`;
      // Dollars, not micros, keep coefficients in a range the solver's tolerances suit.
      objective.push(`${(cost / 1e6).toFixed(6)} ${x}`);
      terms.push(x);
      if (job.spec.gpusPerReplica > 0) {
        for (const t of job.activeAt) capacityTerms[t]![r]!.push(`${job.spec.gpusPerReplica} ${x}`);
      }
    });
    rows.push(` job${j}: ${wrap(terms, " + ")} = ${job.replicas}`);
  });
  capacityTerms.forEach((perClass, t) => {
    classes.forEach((c, r) => {
      const terms = perClass[r]!;
      if (terms.length > 0) rows.push(` cap${t}_${r}: ${wrap(terms, " + ")} <= ${c.capacity}`);
    });
  });
  const model = `Minimize\n obj: ${wrap(objective, " + ")}\nSubject To\n${rows.join("\n")}\nEnd\n`;
  const result = highs.solve(model, { output_flag: false });
  const nonzeros = rows.reduce((n, r) => n + r.split(" x").length - 1, 0);
  return {
    highs: result.Status === "Optimal" ? result.ObjectiveValue * 1e6 : undefined,
    columns,
    rows: rows.length,
    nonzeros,
  };
}

/** LP-format lines stay short: a long row is continued on the next line. */
function wrap(terms: readonly string[], joiner: string): string {
  if (terms.length === 0) return "0 x_empty";
  const lines: string[] = [];
  for (let i = 0; i < terms.length; i += 8) lines.push(terms.slice(i, i + 8).join(joiner));
  return lines.join(`${joiner}\n   `);
}

/** Arrival instants after which a departure comes before the next arrival: the maximal sets of running jobs. */
export function maximalInstants(jobs: ReadonlyArray<{ at: number; end: number }>): number[] {
  const ends = jobs.map((j) => j.end).sort((a, b) => a - b);
  const out: number[] = [];
  let e = 0;
  for (let i = 0; i < jobs.length; i++) {
    const next = jobs[i + 1]?.at ?? Number.POSITIVE_INFINITY;
    while (e < ends.length && ends[e]! <= jobs[i]!.at) e++;
    if (e < ends.length && ends[e]! <= next) out.push(jobs[i]!.at);
  }
  return out;
}

/** Indices of the instants in [from, to), instants sorted ascending. */
export function activeIndices(instants: readonly number[], from: number, to: number): number[] {
  let lo = 0;
  let hi = instants.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (instants[mid]! < from) lo = mid + 1;
    else hi = mid;
  }
  const out: number[] = [];
  for (let i = lo; i < instants.length && instants[i]! < to; i++) out.push(i);
  return out;
}
