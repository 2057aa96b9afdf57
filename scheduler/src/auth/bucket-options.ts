/** KV options of the auth buckets: file storage, the scheduler's replicas, pinned to its home cluster. */
import { jsPlacement, type StoreOptions } from "@capa/bus";

export function bucketOptions(layout: StoreOptions, history: number) {
  const placement = jsPlacement(layout.placementCluster);
  return { storage: "file" as const, history, replicas: layout.replicas ?? 1, ...(placement ? { placement } : {}) };
}
