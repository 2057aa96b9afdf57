/**
 * Inference: replicas go to demand regions in proportion to demand (Sainte-Laguë apportionment), at least one
 * per demanded region when there are enough replicas; the spread scorer then keeps them on distinct providers.
 */

/** The target region of each replica, in placement order (most demanded region first). */
export function apportion(demand: ReadonlyArray<{ region: string; weight: number }>, replicas: number): string[] {
  const regions = [...demand]
    .filter((d) => d.weight > 0)
    .sort((a, b) => b.weight - a.weight || (a.region < b.region ? -1 : 1));
  if (regions.length === 0 || replicas <= 0) return [];
  if (replicas <= regions.length) return regions.slice(0, replicas).map((d) => d.region);
  const seats = regions.map(() => 1);
  for (let left = replicas - regions.length; left > 0; left--) {
    let pick = 0;
    for (let i = 1; i < regions.length; i++) {
      if (regions[i]!.weight / (2 * seats[i]! + 1) > regions[pick]!.weight / (2 * seats[pick]! + 1)) pick = i;
    }
    seats[pick]!++;
  }
  return regions.flatMap((d, i) => Array.from({ length: seats[i]! }, () => d.region));
}
