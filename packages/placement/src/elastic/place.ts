/**
 * The elastic step's output, as plans and explanations carry it: the size decision in words and per size, with
 * what the gang ran at before and why it is being re-placed (so `capa explain` says why it grew or shrank).
 */
import type { ElasticPolicy } from "@capa/domain";
import type { ElasticRequest } from "../model.js";
import { REASON } from "../reasons.js";
import type { SizeChange, SizeDecision, SizeVerdict } from "./size.js";

export interface ElasticPlan {
  min: number;
  max: number;
  /** Workers before this decision (0 = none running). */
  previous: number;
  /** The chosen size; 0 = not even min fits now. */
  size: number;
  change: SizeChange;
  /** What started the re-placement ("task j-2 lost: agent gone"), if the scheduler said. */
  cause: string;
  verdicts: SizeVerdict[];
  summary: string;
}

export function elasticOf(bounds: ElasticPolicy, info: ElasticRequest, decision: SizeDecision): ElasticPlan {
  const cause = info.cause ?? "";
  return {
    min: bounds.min,
    max: bounds.max,
    previous: info.current,
    size: decision.size,
    change: decision.change,
    cause,
    verdicts: decision.verdicts,
    summary: cause ? `${decision.summary}; after: ${cause}` : decision.summary,
  };
}

/**
 * Why a size does not fit: a capacity reason when the search counted one (the other rejections, such as other
 * models or regions, would have held for any size), else the one counted most.
 */
export function topRejection(rejections: Record<string, number>): string {
  const capacity = CAPACITY_REASONS.find((r) => (rejections[r] ?? 0) > 0);
  if (capacity) return `${rejections[capacity]} ${capacity}`;
  const top = Object.entries(rejections).sort(([a, x], [b, y]) => y - x || (a < b ? -1 : 1))[0];
  return top ? `${top[1]} ${top[0]}` : "no capacity";
}

const CAPACITY_REASONS: readonly string[] = [
  REASON.gangDoesNotFitRegion,
  REASON.fabricDomainTooSmall,
  REASON.insufficientGpus,
];
