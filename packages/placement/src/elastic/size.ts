/**
 * The size decision of an elastic gang, in the framework's shape: a proposer lists the sizes worth trying, size
 * filters reject (each with a named reason), size scorers rank what is left (0–100, weighted), the best wins.
 * Pure: the engine fills in, for each proposed size, whether a gang of that size fits now and what it costs
 * (elastic/place.ts); this file only decides.
 *
 * Why a score and not simply "the largest that fits": more workers finish sooner, but a gang that can only grow
 * onto much dearer GPUs pays more per worker for it. `workers` rewards size, `unit-cost` rewards a low price per
 * worker relative to the cheapest size that fits; with equal weights a gang grows unless the added workers would
 * more than double its average price per worker. A running gang changes size only for a strictly better score
 * (a change restarts every worker), and never below min: below min there is nothing to decide (the caller
 * takes the normal gang path).
 */
import { formatUsd, type Micros } from "@capa/domain";

/** What the engine found for one proposed size. */
export interface SizeOption {
  size: number;
  /** A gang of this size can be placed now (all or nothing). */
  fits: boolean;
  /** Hourly price of the whole gang at this size (micros), when it fits. */
  hourly: Micros;
  /** Expected cost for the job's duration, egress included (micros), when it fits. */
  cost: Micros;
  /** Why it does not fit (the search's main rejection), for the explanation. */
  why?: string;
}

export interface SizeInput {
  min: number;
  max: number;
  /** Workers running now (0 = not running: a first placement or a re-placement after a loss). */
  current: number;
  options: readonly SizeOption[];
  /** Money left for the job (budget − spent); undefined = no budget, or no duration to price it. */
  budgetLeft?: Micros;
  weights?: SizeWeights;
}

export interface SizeWeights {
  workers: number;
  unitCost: number;
}

/** Policy as data: the default balance between throughput and price per worker. */
export const DEFAULT_SIZE_WEIGHTS: SizeWeights = { workers: 1, unitCost: 1 };

export const SIZE_REASON = {
  /** No gang of this size fits on the free capacity. */
  doesNotFit: "does-not-fit",
  /** The gang at this size would cost more than the money left in the job's budget. */
  overBudget: "over-budget",
  /** Out of min..max (never proposed by the proposer; kept for callers' own lists). */
  outOfRange: "out-of-range",
} as const;
export type SizeReason = (typeof SIZE_REASON)[keyof typeof SIZE_REASON];

/** One size filter: says why a size is out, or undefined. */
export interface SizeFilter {
  readonly reason: SizeReason;
  rejects(input: SizeInput, option: SizeOption): boolean;
}

/** One size scorer: 0–100 (100 = best) among the sizes that passed the filters. */
export interface SizeScorer {
  readonly name: keyof SizeWeights;
  score(input: SizeInput, option: SizeOption, feasible: readonly SizeOption[]): number;
}

export const SIZE_FILTERS: readonly SizeFilter[] = [
  { reason: SIZE_REASON.outOfRange, rejects: (i, o) => o.size < i.min || o.size > i.max },
  { reason: SIZE_REASON.doesNotFit, rejects: (_i, o) => !o.fits },
  { reason: SIZE_REASON.overBudget, rejects: (i, o) => i.budgetLeft !== undefined && o.cost > i.budgetLeft },
];

export const SIZE_SCORERS: readonly SizeScorer[] = [
  { name: "workers", score: (i, o) => (100 * o.size) / i.max },
  {
    name: "unitCost",
    score: (_i, o, feasible) => {
      const perWorker = o.hourly / o.size;
      const cheapest = Math.min(...feasible.map((f) => f.hourly / f.size));
      return perWorker <= 0 ? 100 : (100 * cheapest) / perWorker;
    },
  },
];

/** The sizes worth trying, largest first: every size in min..max, or an even sample of `limit` of them. */
export function proposeSizes(min: number, max: number, limit = 16): number[] {
  if (max < min) return [];
  const count = max - min + 1;
  if (count <= limit) return Array.from({ length: count }, (_, i) => max - i);
  const out = new Set<number>();
  for (let i = 0; i < limit; i++) out.add(Math.round(max - (i * (max - min)) / (limit - 1)));
  return [...out].sort((a, b) => b - a);
}

export type SizeChange = "start" | "grow" | "shrink" | "keep" | "none";

export interface SizeVerdict {
  size: number;
  /** "chosen", a filter's reason, or "ranked lower". */
  verdict: string;
  score?: number;
  hourly?: Micros;
  why?: string;
}

export interface SizeDecision {
  /** The size to run at; 0 = no size in min..max fits (the caller takes the normal, all-or-nothing-min path). */
  size: number;
  change: SizeChange;
  verdicts: SizeVerdict[];
  /** One line for the explanation: what was decided and why. */
  summary: string;
}

export function decideSize(input: SizeInput): SizeDecision {
  const weights = input.weights ?? DEFAULT_SIZE_WEIGHTS;
  const options = [...input.options].sort((a, b) => b.size - a.size);
  const verdicts = new Map<number, SizeVerdict>();
  const feasible: SizeOption[] = [];
  for (const o of options) {
    const failed = SIZE_FILTERS.find((f) => f.rejects(input, o));
    if (failed) verdicts.set(o.size, { size: o.size, verdict: failed.reason, ...(o.why && { why: o.why }) });
    else feasible.push(o);
  }
  const scored = feasible.map((o) => ({
    option: o,
    score: SIZE_SCORERS.reduce((sum, s) => sum + weights[s.name] * s.score(input, o, feasible), 0),
  }));
  // Best score; a tie goes to the larger size (the options are largest first and only a better score replaces).
  let best: (typeof scored)[number] | undefined;
  for (const s of scored) if (!best || s.score > best.score + 1e-9) best = s;
  // A running gang at a size that is still feasible keeps it unless another size scores strictly better.
  const running = scored.find((s) => s.option.size === input.current);
  if (best && running && best.score <= running.score + 1e-9) best = running;
  for (const s of scored) {
    verdicts.set(s.option.size, {
      size: s.option.size,
      verdict: s === best ? "chosen" : "ranked lower",
      score: Math.round(s.score * 100) / 100,
      hourly: s.option.hourly,
    });
  }
  const list = [...verdicts.values()].sort((a, b) => b.size - a.size);
  if (!best) {
    return { size: 0, change: "none", verdicts: list, summary: noneSummary(input, list) };
  }
  const size = best.option.size;
  const change: SizeChange =
    input.current === 0 ? "start" : size > input.current ? "grow" : size < input.current ? "shrink" : "keep";
  return { size, change, verdicts: list, summary: summaryOf(input, size, change, list) };
}

function summaryOf(input: SizeInput, size: number, change: SizeChange, list: SizeVerdict[]): string {
  const range = `elastic ${input.min}..${input.max}`;
  const chosen = list.find((v) => v.size === size)!;
  const price = chosen.hourly !== undefined ? ` at ${formatUsd(chosen.hourly)}/h` : "";
  const larger = list.filter((v) => v.size > size);
  const why = larger
    .slice(0, 3)
    .map((v) => `${v.size} ${v.verdict}${v.why ? ` (${v.why})` : ""}`)
    .join(", ");
  const head =
    change === "start"
      ? `${range}: ${size} worker(s)${price}`
      : change === "grow"
        ? `${range}: grow ${input.current} → ${size} workers${price}`
        : change === "shrink"
          ? `${range}: shrink ${input.current} → ${size} workers${price}`
          : `${range}: keep ${size} worker(s)${price}`;
  if (size === input.max) return `${head} (the max)`;
  return why ? `${head}; larger: ${why}` : head;
}

function noneSummary(input: SizeInput, list: SizeVerdict[]): string {
  const minimum = list.find((v) => v.size === input.min);
  const why = minimum ? `${minimum.verdict}${minimum.why ? ` (${minimum.why})` : ""}` : "not tried";
  return `elastic ${input.min}..${input.max}: not even ${input.min} worker(s) fit now (${why})`;
}
