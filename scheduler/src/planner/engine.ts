/**
 * The seam between the scheduler and the placement engine (@capa/placement): one long-lived ClusterState,
 * updated incrementally (adverts, allocation commits, task releases), and the engine that plans against it
 * without mutating it. Nothing else in the scheduler constructs either.
 */
import { ClusterState, PlacementEngine, type Profile } from "@capa/placement";

export type * from "./engine-types.js";
export type ClusterStateApi = ClusterState;
export type PlacementEngineApi = PlacementEngine;
export type ProfileLike = Profile;
export { parseProfile } from "@capa/placement";

export interface PlacementKit {
  cluster: ClusterStateApi;
  engine: PlacementEngineApi;
}

export function createPlacement(): PlacementKit {
  return { cluster: new ClusterState(), engine: new PlacementEngine() };
}
