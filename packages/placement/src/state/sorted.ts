/**
 * Arrays of offers kept sorted by agent id. Sorted (not insertion-ordered) so that iteration order, and so every
 * plan, depends only on what is in the state, never on the order the scheduler happened to add things.
 */
export interface HasAgentId {
  readonly agentId: string;
}

function lowerBound<T extends HasAgentId>(items: readonly T[], agentId: string): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (items[mid]!.agentId < agentId) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function insertSorted<T extends HasAgentId>(items: T[], item: T): void {
  items.splice(lowerBound(items, item.agentId), 0, item);
}

export function removeSorted<T extends HasAgentId>(items: T[], item: T): boolean {
  const at = lowerBound(items, item.agentId);
  if (items[at] !== item) return false;
  items.splice(at, 1);
  return true;
}
