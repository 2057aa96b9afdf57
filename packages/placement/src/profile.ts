/**
 * Profiles: named weightings of the scorers plus a few search options. Data, not code: JSON or YAML, validated
 * here. Built-ins: cheapest, balanced, low-latency, resilient.
 */
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { ProfileError } from "./errors.js";
import type { Scorer } from "./pipeline.js";
import { SCORER_NAMES, SCORERS } from "./scorers/registry.js";

export interface Profile {
  name: string;
  description?: string;
  /** Scorer name → weight (≥ 0). Unlisted scorers weigh 0. */
  weights: Record<string, number>;
  /**
   * Feasible candidates examined per replica before the search settles (Nomad's limit iterator). The walk is
   * cheapest-first with an exact bound, so the limit only trims among near-equal candidates. Default 32.
   */
  maxCandidates?: number;
  /** Duration assumed for cost when a job gives none. Default 3600 s. */
  defaultDurationSeconds?: number;
  /** Data each replica reads from the job's data region, for egress cost, when the request gives none. Default 50. */
  defaultDataGb?: number;
  /**
   * Money (micros) that halves the cost score: an offer costing this much more than the cheapest scores 50.
   * Smaller = more cost-driven. Default $1 per replica for its expected duration.
   */
  costScaleMicros?: number;
  /** Whether jobs may preempt lower-priority / interruptible allocations when nothing fits. Default true. */
  preemption?: boolean;
}

export interface ResolvedProfile extends Required<Profile> {
  /** Scorers with a positive weight, in registry order. */
  weighted: ReadonlyArray<{ scorer: Scorer; weight: number }>;
  totalWeight: number;
}

const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

const profileSchema = z
  .object({
    name: z.string().regex(NAME, "must be lower-case letters, digits and dashes (at most 63)"),
    description: z.string().max(512).optional(),
    weights: z.record(z.string(), z.number().finite().min(0).max(1_000_000)),
    maxCandidates: z.number().int().min(1).max(100_000).optional(),
    defaultDurationSeconds: z
      .number()
      .int()
      .min(1)
      .max(365 * 24 * 3600)
      .optional(),
    defaultDataGb: z.number().finite().min(0).max(1_000_000).optional(),
    costScaleMicros: z.number().int().min(1).max(1_000_000_000_000).optional(),
    preemption: z.boolean().optional(),
  })
  .strict();

/** Validates a profile object; throws ProfileError naming the first bad field. */
export function validateProfile(input: unknown): Profile {
  const result = profileSchema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field = issue.path.map(String).join(".");
    const message = issue.code === "unrecognized_keys" ? `unknown field(s) ${issue.keys.join(", ")}` : issue.message;
    throw new ProfileError(field, message);
  }
  const profile = result.data as Profile;
  for (const name of Object.keys(profile.weights)) {
    if (!SCORER_NAMES.includes(name)) {
      throw new ProfileError(`weights.${name}`, `unknown scorer (known: ${SCORER_NAMES.join(", ")})`);
    }
  }
  if (!Object.values(profile.weights).some((w) => w > 0)) {
    throw new ProfileError("weights", "at least one scorer needs a positive weight");
  }
  return profile;
}

/** Parses a profile from JSON or YAML text (JSON is YAML) and validates it. */
export function parseProfile(text: string): Profile {
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (error) {
    throw new ProfileError("", `not valid JSON or YAML: ${(error as Error).message}`);
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw new ProfileError("", "a profile must be an object with at least `name` and `weights`");
  }
  return validateProfile(data);
}

export function resolveProfile(profile: Profile): ResolvedProfile {
  const weighted = SCORERS.filter((s) => (profile.weights[s.name] ?? 0) > 0).map((scorer) => ({
    scorer,
    weight: profile.weights[scorer.name]!,
  }));
  return {
    name: profile.name,
    description: profile.description ?? "",
    weights: { ...profile.weights },
    maxCandidates: profile.maxCandidates ?? 32,
    defaultDurationSeconds: profile.defaultDurationSeconds ?? 3600,
    defaultDataGb: profile.defaultDataGb ?? 50,
    costScaleMicros: profile.costScaleMicros ?? 1_000_000,
    preemption: profile.preemption ?? true,
    weighted,
    totalWeight: weighted.reduce((sum, w) => sum + w.weight, 0),
  };
}

export const BUILTIN_PROFILES: Profile[] = [
  {
    name: "cheapest",
    description:
      "Lowest cost, scarce capacity priced at its shadow price; packing and reliability only break near-ties.",
    // scarcity weighs as much as cost: the pair ranks by cost + shadow price (see the scarcity scorer).
    weights: { cost: 1000, scarcity: 1000, binpack: 2, reliability: 1, spread: 1, locality: 1 },
  },
  {
    name: "balanced",
    description: "Cost first, with latency, reliability and packing in the mix.",
    weights: { cost: 50, latency: 15, reliability: 15, binpack: 10, headroom: 5, spread: 5, locality: 5 },
  },
  {
    name: "low-latency",
    description: "Close to the users of inference services; cost second.",
    weights: { latency: 60, cost: 20, reliability: 10, spread: 10, locality: 5 },
  },
  {
    name: "resilient",
    description: "Reliable agents and replicas spread over providers; cost third.",
    weights: { reliability: 45, spread: 30, cost: 20, headroom: 10, locality: 5 },
  },
];
