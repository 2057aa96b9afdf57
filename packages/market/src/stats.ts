import type { Micros } from "@capa/domain";

/**
 * Median price of a set of offers. For an even count it is the LOWER of the two middle prices, so the median
 * is always a price some provider actually asks (no averaging, no rounding). Undefined for an empty set.
 */
export function lowerMedian(values: readonly Micros[]): Micros | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

export function minOf(values: readonly number[]): number | undefined {
  let min: number | undefined;
  for (const v of values) if (min === undefined || v < min) min = v;
  return min;
}
