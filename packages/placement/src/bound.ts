/**
 * A lower bound on the cost of placing a set of jobs: the exact optimum of the LP relaxation
 *   min Σ c_jr x_jr   s.t.  Σ_r x_jr = 1 (each job placed),  Σ_j g_j x_jr ≤ cap_r (GPUs),  x ≥ 0,
 * which, substituting f_jr = g_j x_jr, is a transportation problem: solved exactly by min-cost flow (successive
 * shortest paths). No placement of the jobs (ours or anyone's) can cost less. Used by the tests to check the
 * engine against the bound and by the benchmark to cross-check the LP solver.
 */

export interface BoundJob {
  /** GPUs the job needs (units of flow). */
  units: number;
  /** Where it may go and what it costs there (whole job). */
  options: ReadonlyArray<{ resource: string; cost: number }>;
}

interface Edge {
  to: number;
  cap: number;
  cost: number;
  rev: number;
}

/** The LP optimum, or undefined when the jobs cannot all be placed even fractionally. */
export function transportationBound(
  jobs: readonly BoundJob[],
  capacity: ReadonlyMap<string, number>,
): number | undefined {
  const resources = [...capacity.keys()].sort();
  const resourceIndex = new Map(resources.map((r, i) => [r, i]));
  const source = 0;
  const firstJob = 1;
  const firstResource = firstJob + jobs.length;
  const sink = firstResource + resources.length;
  const graph: Edge[][] = Array.from({ length: sink + 1 }, () => []);
  const addEdge = (from: number, to: number, cap: number, cost: number) => {
    graph[from]!.push({ to, cap, cost, rev: graph[to]!.length });
    graph[to]!.push({ to: from, cap: 0, cost: -cost, rev: graph[from]!.length - 1 });
  };
  let demand = 0;
  jobs.forEach((job, j) => {
    if (job.units <= 0) return;
    demand += job.units;
    addEdge(source, firstJob + j, job.units, 0);
    for (const o of job.options) {
      const r = resourceIndex.get(o.resource);
      if (r !== undefined) addEdge(firstJob + j, firstResource + r, job.units, o.cost / job.units);
    }
  });
  resources.forEach((r, i) => {
    addEdge(firstResource + i, sink, capacity.get(r)!, 0);
  });

  let flow = 0;
  let cost = 0;
  const n = sink + 1;
  while (flow < demand) {
    // Bellman-Ford / SPFA shortest path in the residual graph (costs may be negative on reverse edges).
    const dist = new Array<number>(n).fill(Number.POSITIVE_INFINITY);
    const prevNode = new Array<number>(n).fill(-1);
    const prevEdge = new Array<number>(n).fill(-1);
    const inQueue = new Array<boolean>(n).fill(false);
    dist[source] = 0;
    const queue = [source];
    inQueue[source] = true;
    while (queue.length > 0) {
      const u = queue.shift()!;
      inQueue[u] = false;
      graph[u]!.forEach((e, k) => {
        if (e.cap > 0 && dist[u]! + e.cost < dist[e.to]! - 1e-12) {
          dist[e.to] = dist[u]! + e.cost;
          prevNode[e.to] = u;
          prevEdge[e.to] = k;
          if (!inQueue[e.to]) {
            inQueue[e.to] = true;
            queue.push(e.to);
          }
        }
      });
    }
    if (!Number.isFinite(dist[sink]!)) return undefined;
    let push = demand - flow;
    for (let v = sink; v !== source; v = prevNode[v]!) push = Math.min(push, graph[prevNode[v]!]![prevEdge[v]!]!.cap);
    for (let v = sink; v !== source; v = prevNode[v]!) {
      const e = graph[prevNode[v]!]![prevEdge[v]!]!;
      e.cap -= push;
      graph[v]![e.rev]!.cap += push;
    }
    flow += push;
    cost += push * dist[sink]!;
  }
  return cost;
}
